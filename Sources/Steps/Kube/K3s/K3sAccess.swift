import Engine
import Foundation
import Infra
import NodeRuntime
import Transport

/// What every K3s step needs besides its plan section: the nodes (over the run's SSH pool), the
/// addresses K3s uses on them, and the typed Kubernetes client on the control plane.
package struct K3sAccess: Sendable {
    /// The run's SSH pool; nil in a graph built only to be shown or validated.
    let ssh: SSHPool?
    /// Sandbox nodes: the private addresses Terraform reports (moto's) lead nowhere; a node is
    /// reached, and serves, at its SSH address (its own loopback address).
    let sandbox: Bool
    /// The run's one watcher of node registration, shared by the joins.
    let nodeWatch = NodeWatch()
    /// The server's generated token, read once per run and shared by the joins (kept in memory only).
    let serverToken = SharedRead<String>()
    /// The run's rolling-upgrade rule, shared by the joins: at most `k3s.max_unavailable` workers
    /// out of service at once.
    let upgradeGate: UpgradeGate

    package init(ssh: SSHPool?, sandbox: Bool, maxUnavailable: Int = 1) {
        self.ssh = ssh
        self.sandbox = sandbox
        upgradeGate = UpgradeGate(limit: maxUnavailable)
    }

    /// `name` from the recorded inventory, ready to run commands; `readOnly` ones belong to no
    /// attempt of the step (a listing that other steps share stops nothing and is awaited by no one).
    func node(_ name: String, _ context: StepContext, readOnly: Bool = false) throws -> K3sNode {
        guard let ssh else {
            throw StepFailure("\(context.stepID) was built without an SSH pool; run it through 'provision up'", retryable: false)
        }
        guard var entry = try RuntimeAccess.inventory(context.upstream).node(named: name) else {
            throw StepFailure("node \(name) is not in the cluster inventory; run 'provision up'", retryable: false)
        }
        if entry.initSystem == nil { entry.initSystem = NodeReadyStep.initSystem(of: name, in: context.upstream) }
        let endpoint = try entry.endpoint(identityFile: SSHKeyStep.keyFile(context.stateDirectory).path)
        return K3sNode(name: name, entry: entry, runner: NodeCommandRunner(pool: ssh, endpoint: endpoint, attempt: readOnly ? nil : RemoteAttempt(context)), upload: { data, path, mode in
            try await ssh.upload(data, to: path, on: endpoint, mode: mode)
        }, isRoot: endpoint.user == "root")
    }

    /// The control plane from the recorded inventory.
    package func controlPlane(_ context: StepContext, readOnly: Bool = false) throws -> K3sNode {
        guard let control = try RuntimeAccess.inventory(context.upstream).controlPlane else {
            throw StepFailure("the inventory has no node; run 'provision up'", retryable: false)
        }
        return try node(control.name, context, readOnly: readOnly)
    }

    /// The address the other nodes reach `node` at (the API server's, the agents' node IP): its
    /// private address, or in the sandbox its own loopback address.
    package func clusterAddress(_ node: ClusterInventory.Node) throws -> String {
        let address = sandbox || node.privateAddress.isEmpty ? node.ssh?.host ?? "" : node.privateAddress
        guard !address.isEmpty else { throw StepFailure("the inventory has no address for node \(node.name); run 'provision up'", retryable: false) }
        return address
    }

    /// The address this machine reaches `node` at: its public address (the sandbox's loopback one).
    func reachableAddress(_ node: ClusterInventory.Node) throws -> String {
        let address = sandbox || node.publicAddress.isEmpty ? node.ssh?.host ?? "" : node.publicAddress
        guard !address.isEmpty else { throw StepFailure("the inventory has no public address for node \(node.name); run 'provision up'", retryable: false) }
        return address
    }

    /// The nodes the cluster reports (the typed client's node listing on the control plane);
    /// transient API errors are retried until `deadline` (default: `Kubectl.patience` from now).
    static func clusterNodes(on control: K3sNode, until deadline: ContinuousClock.Instant? = nil) async throws -> [KubeNode] {
        let kube = control.kube(until: deadline)
        let result = try await kube.get(["nodes"])
        guard result.succeeded else { throw kube.failure(Kubectl.shown("get nodes"), result) }
        return try KubeNode.list(Data(result.stdout.utf8))
    }

    /// Whether the API server answers `/readyz` with ok, asked every half second until `deadline`
    /// (one try when it has passed): a real API server fails a share of calls while it settles.
    static func apiReady(on control: K3sNode, until deadline: ContinuousClock.Instant = .now) async throws -> Bool {
        while true {
            let result = try await control.kube(until: .now).raw("/readyz")
            if result.succeeded && result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok" { return true }
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// The error for a node that does not run the planned version after its install: what it
    /// runs (its Node's `kubeletVersion`), the pin, and how to restart the service on the new binary.
    static func notRunningPlanned(node: String, service: String, runs: String, planned: String) -> String {
        """
        \(node) runs K3s \(runs) (its Node's status.nodeInfo.kubeletVersion), not \(planned) that the plan pins, after the install: \
        the \(service) service did not restart on the new binary (K3s's installer skips the restart when it sees no change); \
        restart it on \(node) ('systemctl restart \(service)' under systemd, 'rc-service \(service) restart' under OpenRC), then run 'provision up'
        """
    }

    /// The version `k3s --version` reports on a node ("" when k3s is not installed): the file on
    /// disk, which says nothing of the version the node runs (`KubeNode.version` does).
    static func installedVersion(on node: K3sNode) async throws -> String {
        let result = try await node.run("k3s --version 2>/dev/null || /usr/local/bin/k3s --version 2>/dev/null || true", timeout: .seconds(20))
        return version(fromVersionOutput: result.stdout) ?? ""
    }

    /// `v1.33.4+k3s1` from "k3s version v1.33.4+k3s1 (abc123)".
    static func version(fromVersionOutput text: String) -> String? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("k3s version ") }) else { return nil }
        return line.split(separator: " ").dropFirst(2).first.map(String.init)
    }

    /// The join token: the plan's secret, or the one the server generated (read over SSH once per
    /// run, never stored). Either way it is added to the run's redactor before anything can print it.
    func token(planToken: String?, control: K3sNode, context: StepContext) async throws -> String {
        if let planToken {
            context.addSecret(planToken)
            return planToken
        }
        let text = try await serverToken.value {
            let text = try await control.readSecret("/var/lib/rancher/k3s/server/token").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else {
                throw StepFailure("the server on \(control.name) has no token at /var/lib/rancher/k3s/server/token; run 'provision up' so k3s.server installs it")
            }
            return text
        }
        context.addSecret(text)
        // The short form (what follows "::server:") is a valid token too.
        if let range = text.range(of: "::server:") { context.addSecret(String(text[range.upperBound...])) }
        return text
    }
}
