import Engine
import Foundation

/// Why an SSH operation failed, with what to do about it.
public enum SSHError: RetryableError, CustomStringConvertible, Sendable, Equatable {
    /// TCP connect failed or timed out.
    case unreachable(endpoint: String, reason: String)
    /// The SSH handshake or authentication failed.
    case handshake(endpoint: String, reason: String)
    /// The key was refused.
    case authentication(endpoint: String, user: String, identityFile: String, reason: String)
    /// The host presented a different key than the one pinned on first contact.
    case hostKeyChanged(endpoint: String, pinKey: String, pinned: String, presented: String)
    /// A command or transfer failed at the protocol level (not a non-zero exit).
    case channel(endpoint: String, operation: String, reason: String)
    /// A command did not finish in time.
    case timedOut(endpoint: String, operation: String, after: Duration)
    /// A local file could not be read or written.
    case localFile(path: String, reason: String)

    /// Whether trying again (on a fresh connection) can help.
    public var isRetryable: Bool {
        switch self {
        case .unreachable, .handshake, .channel, .timedOut: return true
        case .authentication, .hostKeyChanged, .localFile: return false
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let endpoint, let reason):
            return "cannot reach \(endpoint): \(reason); check that the machine is running and that the security group allows SSH from this address"
        case .handshake(let endpoint, let reason):
            return "SSH handshake with \(endpoint) failed: \(reason); the SSH server may still be starting, or this is not an SSH port"
        case .authentication(let endpoint, let user, let identityFile, let reason):
            return "\(endpoint) refused the key \(identityFile) for user \(user): \(reason); check the node's authorized_keys and the plan's ssh user"
        case .hostKeyChanged(let endpoint, let pinKey, let pinned, let presented):
            return """
                the host key of \(endpoint) CHANGED: pinned \(pinned), now presented \(presented). \
                This is either a rebuilt machine or someone in the middle. If you rebuilt it deliberately, \
                run 'provision trust-host \(pinKey)' to forget the old key, then 'provision resume'
                """
        case .channel(let endpoint, let operation, let reason):
            return "\(operation) on \(endpoint) failed: \(reason)"
        case .timedOut(let endpoint, let operation, let after):
            return "\(operation) on \(endpoint) did not finish within \(after); raise the step's retry timeout if the machine is just slow"
        case .localFile(let path, let reason):
            return "cannot use local file \(path): \(reason)"
        }
    }
}
