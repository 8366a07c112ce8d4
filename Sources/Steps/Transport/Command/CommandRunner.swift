import Engine
import Foundation

/// Runs a shell command somewhere: here (`LocalCommandRunner`) or on a node over SSH
/// (`NodeCommandRunner`). Both answer with a `CommandResult`, and both stop their child when the
/// calling task is cancelled (a local process group gets SIGINT, then SIGKILL; a remote command's
/// channel is closed), so cancellation reaches every command a step starts.
public protocol CommandRunner: Sendable {
    /// Where commands run, for messages (`this machine`, `worker-1 (root@127.0.0.5:22)`).
    var location: String { get }

    /// Runs `command` with `/bin/sh -c` (locally) or the login shell (on a node).
    /// - Parameter timeout: how long it may take; nil waits as long as it runs.
    func run(_ command: String, timeout: Duration?) async throws -> CommandResult

    /// The same place without a wrapper that keeps a command's output in files before handing it
    /// over (`RemoteAttempt`): for short reads of secrets, which must not touch a disk.
    var direct: any CommandRunner { get }
}

extension CommandRunner {
    public var direct: any CommandRunner { self }
}
