import Engine
import Foundation
import Transport
import Verification

extension Workspace {
    /// verify on a K3s cluster (`K3sVerification`), reaching the recorded control plane over SSH.
    func verifyK3sPipeline(timeout: Duration, log: (@Sendable (String) -> Void)?) async throws -> [PipelineVerifier.Check] {
        let cluster = try recordedK3sCluster(for: "verify checks the pipeline")
        let pool = SSHPool(store: cluster.store, parallelism: 2)
        do {
            let checks = try await verification(cluster, pool: pool).checks(timeout: timeout, log: log)
            await pool.closeAll()
            return checks
        } catch {
            await pool.closeAll()
            throw error
        }
    }

    /// The verification of `cluster`, its commands run through `pool`.
    func verification(_ cluster: RecordedK3sCluster, pool: SSHPool) -> K3sVerification {
        K3sVerification(endpoint: cluster.endpoint, pins: HostKeyPins(store: cluster.store), controlPlane: controlPlaneNode(cluster, pool: pool),
                        nodes: cluster.inventory.nodes.count, maxLatency: plan.pipeline?.maxLatency)
    }
}
