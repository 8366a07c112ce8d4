import Engine
import Foundation

/// The one entry point for `k3s kubectl` on a node (the control plane): every K3s step builds its
/// kubectl calls here and runs them through the node's command runner.
///
/// A call that fails with a transient API error (`KubectlError.transient`: the API server
/// restarting, "etcdserver: leader changed", a timeout) is retried, with a growing pause, until
/// `deadline` (the step's own deadline, or `patience` from now); an answer about the request
/// (NotFound, a validation error) is returned at once. After the deadline the last result is
/// returned, so the caller's error names the last error the API gave.
struct Kubectl: Sendable {
    /// How long a call without a deadline of its step keeps retrying transient errors.
    static let patience: Duration = .seconds(60)
    /// The first pause between tries, doubled up to `maxPause`.
    static let firstPause: Duration = .milliseconds(500)
    static let maxPause: Duration = .seconds(4)

    /// Where kubectl runs.
    let node: K3sNode
    /// Transient errors are retried until then.
    let deadline: ContinuousClock.Instant

    /// Runs `k3s kubectl <arguments>`; retries transient failures until the deadline. The result
    /// is the last try's: failed when the error was not transient or outlasted the deadline.
    func run(_ arguments: String, timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await Self.retrying(until: deadline) { try await node.run("k3s kubectl \(arguments)", timeout: timeout) }
    }

    /// Runs `attempt` (a kubectl call made some other way) again after transient API errors, with
    /// a growing pause, until `deadline`; returns the last try's result.
    static func retrying(until deadline: ContinuousClock.Instant, _ attempt: () async throws -> CommandResult) async throws -> CommandResult {
        var pause = firstPause
        while true {
            let result = try await attempt()
            guard !result.succeeded, KubectlError(stderr: result.stderr) == .transient, ContinuousClock.now + pause < deadline else { return result }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, maxPause)
        }
    }

    /// Runs `k3s kubectl <arguments>` like `run`, and fails with `what` and the last error unless it exits 0.
    @discardableResult
    func must(_ arguments: String, _ what: String, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        let result = try await run(arguments, timeout: timeout)
        guard result.succeeded else { throw failure(what, result) }
        return result
    }

    /// The error for a call that failed: what it did, the last error, and for an API that stayed
    /// unavailable where to look.
    func failure(_ what: String, _ result: CommandResult) -> StepFailure {
        let error = (String(result.stderr.suffix(600)) + String(result.stdout.suffix(300))).trimmingCharacters(in: .whitespacesAndNewlines)
        guard KubectlError(stderr: result.stderr) == .transient else {
            return StepFailure("\(what) on \(node.name) failed (\(result.summary)): \(error)")
        }
        return StepFailure("""
            \(what) on \(node.name) failed: the API server did not answer before the step's deadline; its last error: \(error)
              check the K3s server on \(node.name) ('k3s kubectl get --raw /readyz'; its log: 'journalctl -u k3s' under systemd, \
            /var/log/k3s.log under OpenRC), then run 'provision up'
            """)
    }
}
