import Engine
import Foundation
import Kube
import PlanLanguage
import Transport
import Verification

extension Workspace {
    /// Runs the producers' autoscaling check (`provision verify --scale`, see ScaleCheck) against the
    /// recorded `runtime: k3s` cluster, over an SSH session to its control plane. Takes no lock.
    /// - Parameters:
    ///   - factor: how much the producers' RATE is raised by.
    ///   - timeout: the bound of the scale-out and scale-in waits together (half each).
    ///   - onEvent: receives each timeline event as it happens.
    /// - Throws: `PipelineUnavailable` when the plan has no K3s runtime or no recorded cluster.
    public func verifyScale(factor: Double, timeout: Duration, onEvent: @escaping @Sendable (ScaleReport.Event) -> Void = { _ in }) async throws -> ScaleReport {
        guard plan.runtime == .k3s else {
            throw PipelineUnavailable(description: "plan '\(plan.name)' runs the pipeline on the \(plan.runtime?.rawValue ?? "no") runtime, which has no "
                                      + "HorizontalPodAutoscaler to scale (the sandbox processes runtime runs one producer per worker); "
                                      + "'verify --scale' needs 'runtime: k3s' in the plan and a 'provision up' that deployed the workloads")
        }
        let cluster = try recordedK3sCluster(for: "verify --scale watches a K3s cluster's HorizontalPodAutoscaler")
        let pool = SSHPool(store: cluster.store, parallelism: 1)
        let report = await ScaleCheck(control: controlPlaneNode(cluster, pool: pool), factor: factor, timeout: timeout, onEvent: onEvent).run()
        // Closed before returning (as verifyPipeline does): the command exits right after.
        await pool.closeAll()
        return report
    }
}

extension Workspace {
    /// A duration as the plan writes them ("500ms", "10s", "5m", "1m30s", a bare number of seconds); nil when it is not one.
    public static func parseDuration(_ text: String) -> Duration? { PlanReader.parseDuration(text) }
}
