import Foundation

/// What a failed `kubectl` call's stderr says about the API server: a transient error (the server
/// restarting, its etcd electing a leader, a timeout) that the same call may not meet again, or an
/// answer about the request itself (NotFound, Invalid, Forbidden, a conflict) that a retry repeats.
package enum KubectlError: Equatable, Sendable {
    /// The API could not answer now; the same call may succeed in a moment.
    case transient
    /// The API (or kubectl) answered about the request; retrying repeats it.
    case permanent

    /// What kubectl and the API server print for a condition that passes by itself. Matched
    /// case-insensitively anywhere in stderr.
    static let transientMessages = [
        "the connection to the server",          // "... 127.0.0.1:6443 was refused - did you specify the right host or port?"
        "connection refused",
        "connection reset by peer",
        "unable to connect to the server",
        "etcdserver: leader changed",
        "etcdserver: request timed out",
        "etcdserver: no leader",
        "tls handshake timeout",
        "i/o timeout",
        "http2: client connection lost",
        "unexpected eof",
        "context deadline exceeded",
        "the server is currently unable to handle the request",   // ServiceUnavailable
        "the server was unable to return a response in the time allotted",   // Timeout
        "error from server (serviceunavailable)",
        "error from server (timeout)",
        "error from server (toomanyrequests)",
        "error from server (internalerror): an error on the server (\"\") has prevented the request",
    ]

    /// What the API answers about the request itself: never transient, even when such a message
    /// also quotes a transient-looking cause (an admission webhook that timed out is still Invalid).
    static let permanentMarkers = ["(notfound)", "(invalid)", "(forbidden)", "(badrequest)", "(alreadyexists)", "(conflict)", "(unauthorized)",
                                   "error: unknown", "error: the server doesn't have a resource type", "error validating", " is invalid:"]

    /// Classifies a failed call by its stderr.
    init(stderr: String) {
        let text = stderr.lowercased()
        if Self.permanentMarkers.contains(where: text.contains) {
            self = .permanent
        } else if Self.transientMessages.contains(where: text.contains) {
            self = .transient
        } else {
            self = .permanent
        }
    }
}
