import Foundation

/// What a remote command did.
public struct SSHResult: Sendable {
    /// Exit status, or nil when the command was killed by a signal.
    public let exitStatus: Int32?
    /// The signal name (`KILL`, `TERM`) when the command was killed by one.
    public let exitSignal: String?
    /// Everything the command wrote to stdout.
    public let standardOutput: Data
    /// Everything the command wrote to stderr.
    public let standardError: Data

    /// Whether it exited 0.
    public var succeeded: Bool { exitStatus == 0 }
    /// stdout as UTF-8 text.
    public var stdout: String { String(decoding: standardOutput, as: UTF8.self) }
    /// stderr as UTF-8 text.
    public var stderr: String { String(decoding: standardError, as: UTF8.self) }

    /// "exited with 3" or "killed by signal TERM".
    public var summary: String {
        if let exitSignal { return "killed by signal \(exitSignal)" }
        return "exited with \(exitStatus.map(String.init) ?? "unknown status")"
    }
}
