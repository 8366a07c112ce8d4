import Engine
import Foundation
import Infra
import Kube
import PlanLanguage
import Transport
import Verification

/// An open `provision port-forward`: the local URL and what it reaches.
public struct OpenForward: Sendable {
    /// The forward itself; `close()` ends it.
    public let forward: SSHPortForward
    /// `http://127.0.0.1:PORT` (`https://` for the API).
    public let url: String
    /// What the node connects to, `host:port` (a Service's cluster address, or the API server's).
    public let target: String
    /// `monitoring/kube-prometheus-stack-prometheus`, or `K3s API on control-plane`.
    public let what: String
}

extension Workspace {
    /// Forwards a local port through an SSH session to the recorded control plane to `target`:
    /// a monitoring Service's cluster address (looked up through the typed client on the control
    /// plane), or for `api` the API server at the control plane's cluster address, port 6443.
    /// - Parameter localPort: nil: for `api`, `k3s.api_local_port` (the port a kubeconfig written
    ///   with `api_access: forward` names); for a Service, a free port.
    /// - Throws: `PipelineUnavailable` when the plan is not K3s or no cluster is recorded, or the
    ///   Service does not exist; `SSHError` or `PortForwardError` when forwarding cannot start.
    public func openPortForward(_ target: ForwardTarget, localPort: Int?) async throws -> OpenForward {
        let cluster = try recordedK3sCluster(for: "port-forward reaches the Services and API of a K3s cluster")
        let host: String
        let port: Int
        let what: String
        if let service = target.serviceName {
            let pool = SSHPool(store: cluster.store, parallelism: 1)
            do {
                (host, port) = try await serviceAddress(namespace: ForwardTarget.namespace, name: service, port: target.servicePort, cluster: cluster, pool: pool)
            } catch {
                await pool.closeAll()
                throw error
            }
            await pool.closeAll()
            what = "\(ForwardTarget.namespace)/\(service)"
        } else {
            host = try K3sAccess(ssh: nil, sandbox: plan.target == .sandbox).clusterAddress(cluster.control)
            port = ForwardTarget.apiPort
            what = "K3s API on \(cluster.control.name)"
        }
        let forward = try await SSHPortForward.open(endpoint: cluster.endpoint, to: host, port: port,
                                                   localPort: localPort ?? (target == .api ? cluster.spec.apiLocalPort : 0), pins: HostKeyPins(store: cluster.store))
        return OpenForward(forward: forward, url: "\(target.scheme)://127.0.0.1:\(forward.localPort)", target: "\(host):\(port)", what: what)
    }

    /// A recorded K3s cluster: the store, the control plane and how to reach it over SSH.
    struct RecordedK3sCluster {
        let store: SQLiteRunStore
        let inventory: ClusterInventory
        let control: ClusterInventory.Node
        let endpoint: SSHEndpoint
        let spec: K3sSpec
    }

    /// The cluster the store records for this K3s plan; `purpose` ends the error of a plan that is not K3s.
    func recordedK3sCluster(for purpose: String) throws -> RecordedK3sCluster {
        guard plan.runtime == .k3s, let spec = plan.k3s else {
            throw PipelineUnavailable(description: "plan '\(plan.name)' has runtime \(plan.runtime?.rawValue ?? "none"); \(purpose): use a plan with 'runtime: k3s'")
        }
        guard hasStore else { throw PipelineUnavailable(description: "plan '\(plan.name)' has no runs yet; start one with 'provision up'") }
        let store = try openStore()
        guard let outputs = try store.steps()[TerraformApplyStep.id]?.outputs, !outputs.isEmpty,
              let inventory = try? ClusterInventory(outputs: outputs), let control = inventory.controlPlane else {
            throw PipelineUnavailable(description: "no cluster is recorded for plan '\(plan.name)'; run 'provision up' first")
        }
        let endpoint = try control.endpoint(identityFile: SSHKeyStep.keyFile(stateDirectory).path)
        return RecordedK3sCluster(store: store, inventory: inventory, control: control, endpoint: endpoint, spec: spec)
    }

    /// The control plane of `cluster` as the K3s steps reach it (root, or `sudo -n`), through `pool`.
    func controlPlaneNode(_ cluster: RecordedK3sCluster, pool: SSHPool) -> K3sNode {
        let endpoint = cluster.endpoint
        return K3sNode(name: cluster.control.name, entry: cluster.control, runner: NodeCommandRunner(pool: pool, endpoint: endpoint), upload: { data, path, mode in
            try await pool.upload(data, to: path, on: endpoint, mode: mode)
        }, isRoot: endpoint.user == "root")
    }

    /// The cluster address of Service `namespace/name` (read through the typed client on the control plane).
    func serviceAddress(namespace: String, name: String, port: Int, cluster: RecordedK3sCluster, pool: SSHPool) async throws -> (host: String, port: Int) {
        try await verification(cluster, pool: pool).serviceAddress((namespace, name, port))
    }
}
