import Engine
import Foundation
import Kube
import Transport
import Verification

/// A generated credential, read from where it is kept (the control plane), for `provision secrets`.
public struct GeneratedCredential: Sendable, Encodable {
    public let user: String
    public let password: String
}

extension Workspace {
    /// The credentials `provision secrets` can show, by name.
    public static let secretNames = ["grafana"]

    /// Grafana's admin user and generated password, read over SSH from the recorded control plane
    /// (the monitoring step keeps the password there only, in a 0600 file). Changes nothing and
    /// takes no lock.
    public func grafanaAdmin() async throws -> GeneratedCredential {
        guard plan.runtime == .k3s, let spec = plan.k3s else {
            throw PipelineUnavailable(description: "plan '\(plan.name)' does not run K3s (runtime: \(plan.runtime?.rawValue ?? "none")); "
                + "Grafana's password is generated only for 'runtime: k3s' plans")
        }
        guard spec.deploy, spec.monitoring else {
            throw PipelineUnavailable(description: "plan '\(plan.name)' installs no monitoring (k3s.deploy and k3s.monitoring must both be true)")
        }
        let cluster = try recordedK3sCluster(for: "Grafana's password is generated only for 'runtime: k3s' plans")
        let pool = SSHPool(store: cluster.store, parallelism: 1)
        let node = controlPlaneNode(cluster, pool: pool)
        let password: String
        do {
            password = try await node.read(GrafanaAdmin.passwordFile).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            await pool.closeAll()
            throw error
        }
        await pool.closeAll()
        guard !password.isEmpty else {
            throw PipelineUnavailable(description: "\(node.name) has no Grafana password yet (\(GrafanaAdmin.passwordFile)); "
                + "run 'provision up' so the monitoring step generates it")
        }
        return GeneratedCredential(user: GrafanaAdmin.user, password: password)
    }
}
