import Engine
import Foundation

/// Runs commands on one node over the run's SSH pool (one session per node, shared by every step,
/// at most the run's parallelism at once).
public struct NodeCommandRunner: CommandRunner {
    /// The run's pool.
    public let pool: SSHPool
    /// The node.
    public let endpoint: SSHEndpoint

    /// A runner for `endpoint` over `pool`.
    public init(pool: SSHPool, endpoint: SSHEndpoint) {
        self.pool = pool
        self.endpoint = endpoint
    }

    public var location: String { endpoint.description }

    public func run(_ command: String, timeout: Duration? = nil) async throws -> CommandResult {
        try await pool.run(command, on: endpoint, timeout: timeout)
    }
}
