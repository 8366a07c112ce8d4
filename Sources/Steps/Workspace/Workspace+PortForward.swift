import Engine
import Foundation

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
    /// a monitoring Service's cluster address (looked up with `k3s kubectl get svc` on the control
    /// plane), or for `api` the API server at the control plane's cluster address, port 6443.
    /// - Parameter localPort: nil: for `api`, `k3s.api_local_port` (the port a kubeconfig written
    ///   with `api_access: forward` names); for a Service, a free port.
    /// - Throws: `PipelineUnavailable` when the plan is not K3s or no cluster is recorded, or the
    ///   Service does not exist; `SSHError` or `PortForwardError` when forwarding cannot start.
    public func openPortForward(_ target: ForwardTarget, localPort: Int?) async throws -> OpenForward {
        guard plan.runtime == .k3s, let spec = plan.k3s else {
            throw PipelineUnavailable(description: "plan '\(plan.name)' has runtime \(plan.runtime?.rawValue ?? "none"); port-forward reaches the Services "
                + "and API of a K3s cluster: use a plan with 'runtime: k3s'")
        }
        guard hasStore else { throw PipelineUnavailable(description: "plan '\(plan.name)' has no runs yet; start the cluster with 'provision up'") }
        let store = try openStore()
        guard let outputs = try store.steps()[TerraformApplyStep.id]?.outputs, !outputs.isEmpty,
              let inventory = try? ClusterInventory(outputs: outputs), let control = inventory.controlPlane else {
            throw PipelineUnavailable(description: "no cluster is recorded for plan '\(plan.name)'; run 'provision up' first")
        }
        let endpoint = try control.endpoint(identityFile: SSHKeyStep.keyFile(stateDirectory).path)
        let access = K3sAccess(ssh: nil, sandbox: plan.target == .sandbox)
        let host: String
        let port: Int
        let what: String
        if let service = target.serviceName {
            let pool = SSHPool(store: store, parallelism: 1)
            let command = "k3s kubectl get svc -n \(ForwardTarget.namespace) \(service) -o json"
            let result: CommandResult
            do {
                result = try await pool.run(endpoint.user == "root" ? command : "sudo -n \(command)", on: endpoint, timeout: .seconds(30))
            } catch {
                await pool.closeAll()
                throw error
            }
            await pool.closeAll()
            guard result.succeeded else {
                if result.stderr.contains("NotFound") || result.stderr.contains("not found") {
                    throw PipelineUnavailable(description: "the cluster of plan '\(plan.name)' has no Service \(ForwardTarget.namespace)/\(service); "
                        + "run 'provision up' (with k3s.deploy, it installs the monitoring stack)")
                }
                throw PipelineUnavailable(description: "'k3s kubectl get svc' on \(control.name) failed (\(result.summary)): \(String(result.stderr.suffix(400)).trimmed); "
                    + "is the cluster up? 'provision status' says")
            }
            (host, port) = try target.address(fromServiceJSON: result.standardOutput)
            what = "\(ForwardTarget.namespace)/\(service)"
        } else {
            host = try access.clusterAddress(control)
            port = ForwardTarget.apiPort
            what = "K3s API on \(control.name)"
        }
        let forward = try await SSHPortForward.open(endpoint: endpoint, to: host, port: port,
                                                   localPort: localPort ?? (target == .api ? spec.apiLocalPort : 0), pins: HostKeyPins(store: store))
        return OpenForward(forward: forward, url: "\(target.scheme)://127.0.0.1:\(forward.localPort)", target: "\(host):\(port)", what: what)
    }
}
