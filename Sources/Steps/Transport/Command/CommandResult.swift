import Engine
import Foundation

/// What a command did, here or on a node: the one result type of every `CommandRunner`.
public struct CommandResult: Sendable {
    /// Exit status, or nil when the command was killed by a signal.
    public let exitStatus: Int32?
    /// The signal name (`KILL`, `TERM`) when the command was killed by one.
    public let exitSignal: String?
    /// Everything the command wrote to stdout.
    public let standardOutput: Data
    /// Everything the command wrote to stderr.
    public let standardError: Data

    /// Creates a result.
    public init(exitStatus: Int32?, exitSignal: String?, standardOutput: Data, standardError: Data) {
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// The result of a local child process (its output already redacted; stderr is the tail).
    public init(_ process: ProcessResult) {
        self.init(exitStatus: process.exitCode, exitSignal: process.signal.map { ProcessResult.signalName($0).replacingOccurrences(of: "SIG", with: "") },
                  standardOutput: Data(process.standardOutput.utf8),
                  standardError: Data(process.standardErrorTail.map { $0 + "\n" }.joined().utf8))
    }

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
