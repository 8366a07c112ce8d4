import Engine
import Foundation

/// Runs commands on one node over the run's SSH pool (one session per node, shared by every step,
/// at most the run's parallelism at once).
///
/// With an `attempt`, each command first waits for (or stops) what earlier attempts of the same
/// step left running on the node (see `RemoteAttempt`), so a step never runs twice at the same
/// time there either.
public struct NodeCommandRunner: CommandRunner {
    /// The run's pool.
    public let pool: SSHPool
    /// The node.
    public let endpoint: SSHEndpoint
    /// The step attempt the commands belong to; nil for commands outside a run (`logs`, `verify`).
    public let attempt: RemoteAttempt?

    /// A runner for `endpoint` over `pool`.
    public init(pool: SSHPool, endpoint: SSHEndpoint, attempt: RemoteAttempt? = nil) {
        self.pool = pool
        self.endpoint = endpoint
        self.attempt = attempt
    }

    public var location: String { endpoint.description }

    /// The node without the attempt's wrapper: the output comes straight over the channel.
    public var direct: any CommandRunner { NodeCommandRunner(pool: pool, endpoint: endpoint) }

    public func run(_ command: String, timeout: Duration? = nil) async throws -> CommandResult {
        try await pool.run(attempt?.wrap(command) ?? command, on: endpoint, timeout: timeout)
    }
}
