import Engine
import Foundation
import Infra
import NodeRuntime

/// `k3s.server`: the pinned K3s server on the control plane, installed by K3s's install script
/// (`INSTALL_K3S_VERSION`, `INSTALL_K3S_EXEC`; airgap files with `INSTALL_K3S_SKIP_DOWNLOAD`).
///
/// `check`: k3s is installed, the service runs, the API answers `/readyz` and the control plane's
/// Node runs the pin (its `kubeletVersion`, not `k3s --version`: an air-gap binary swapped under a
/// running server is not what it runs). `apply` does not even call the install script when the
/// node already runs this install (its recorded digest) and the check holds; when it does, it sets
/// `INSTALL_K3S_FORCE_RESTART=true` (K3s's installer restarts only for what changed during its own
/// run) and waits, within `k3s.install_timeout`, until the Node runs the pin. Outputs: the API URL on the cluster address, the node name, the version.
///
/// A server already in the cluster whose install changes goes first in a rolling upgrade: it is
/// cordoned and drained (`NodeUpgrade`), reinstalled, and uncordoned once it runs the pin; the
/// joins, which depend on this step, follow. A downgrade is refused.
///
/// Teardown: only under `down --keep-infra` (otherwise the machine goes with terraform.apply's
/// teardown), K3s's `k3s-uninstall.sh` on the control plane (`K3sUninstall`), after every worker's
/// agent was uninstalled (their steps depend on this one).
package struct K3sServerStep: Step {
    package static let id = StepID("k3s.server")

    let settings: K3sSettings

    /// The step for these K3s settings.
    package init(settings: K3sSettings) {
        self.settings = settings
    }

    package var id: StepID { Self.id }
    package var dependencies: [StepID] { [TerraformApplyStep.id, NodeReadyStep.id] }
    package var inputs: String {
        "\(settings.inputs) disable=\(settings.spec.disable.joined(separator: ",")) extra=\(settings.spec.extraArgs.joined(separator: " ")) "
            + "pods=\(settings.spec.clusterCIDR) services=\(settings.spec.serviceCIDR)"
    }
    package var planKeys: [String: String] {
        settings.planKeys.merging(settings.spec.planKeys(["disable", "extra_args", "cluster_cidr", "service_cidr"])) { $1 }
    }
    package var hasCheck: Bool { true }
    package var hasTeardown: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(2), maxBackoff: .seconds(5)) }

    /// Only the control plane's machine and route count: adding a worker leaves the server alone.
    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        RuntimeAccess.scope(upstream) { inventory in [inventory.controlPlane?.name ?? ""] }
            .filter { id, _ in id == TerraformApplyStep.id || id.rawValue == "\(NodeReadyStep.id.rawValue)/\((try? RuntimeAccess.inventory(upstream))?.controlPlane?.name ?? "")" }
    }

    /// `INSTALL_K3S_EXEC` for the server on `control`: the plan's pod and Service ranges always
    /// explicit (K3s's defaults overlap the VPC's), the cluster DNS the Service range's 10th address.
    func exec(_ control: ClusterInventory.Node) throws -> String {
        var args = ["server", "--tls-san", try settings.access.reachableAddress(control), "--node-name", control.name,
                    "--node-ip", try settings.access.clusterAddress(control), "--write-kubeconfig-mode", "600",
                    "--cluster-cidr", settings.spec.clusterCIDR.description, "--service-cidr", settings.spec.serviceCIDR.description,
                    "--cluster-dns", settings.spec.clusterDNS]
        for item in settings.spec.disable { args += ["--disable", item] }
        return (args + settings.spec.extraArgs).joined(separator: " ")
    }

    private func outputs(_ control: ClusterInventory.Node) throws -> StepOutputs {
        ["api_url": .string("https://\(try settings.access.clusterAddress(control)):6443"), "node_name": .string(control.name),
         "version": .string(settings.spec.version)]
    }

    /// The first thing about the server that is not as planned, or nil. Its version is the one
    /// its Node reports (`kubeletVersion`: what runs), not `k3s --version` (the file on disk).
    private func problem(_ node: K3sNode) async throws -> String? {
        if try await K3sAccess.installedVersion(on: node).isEmpty { return "k3s is not installed on \(node.name)" }
        guard try await node.run("rc-service k3s status >/dev/null 2>&1 || systemctl is-active --quiet k3s 2>/dev/null", timeout: .seconds(20)).succeeded else {
            return "the k3s service is not running on \(node.name)"
        }
        guard try await K3sAccess.apiReady(on: node, until: .now + .seconds(15)) else {
            return "the API server on \(node.name) does not answer /readyz with ok (asked for 15 s)"
        }
        guard let running = try await K3sAccess.clusterNodes(on: node).first(where: { $0.name == node.name }) else {
            return "\(node.name) is not in the cluster's nodes yet"
        }
        return running.version == settings.spec.version ? nil : "\(node.name) runs K3s \(running.version), the plan pins \(settings.spec.version)"
    }

    /// Whether an interrupted upgrade left the control plane cordoned (its marker, and the Node unschedulable).
    private func leftCordoned(_ node: K3sNode) async throws -> Bool {
        try await NodeUpgrade.leftCordoned(on: node).contains(node.name)
    }

    /// Nil when the control plane's Node runs the pinned version; otherwise what it runs.
    private func versionProblem(_ node: K3sNode, until deadline: ContinuousClock.Instant?) async throws -> String? {
        guard let running = try await K3sAccess.clusterNodes(on: node, until: deadline).first(where: { $0.name == node.name }) else {
            return "\(node.name) is not in the cluster's nodes yet"
        }
        return running.version == settings.spec.version ? nil : "\(node.name) runs K3s \(running.version), the plan pins \(settings.spec.version)"
    }

    package func teardown(_ context: StepContext) async throws {
        guard context.keepsInfrastructure else {
            context.log.write("the control plane's machine is removed with terraform.apply's teardown: K3s is not uninstalled first")
            return
        }
        try await K3sUninstall.run(.server, on: try settings.access.controlPlane(context), log: context.log)
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let node = try settings.access.controlPlane(context)
        if let problem = try await problem(node) { return .unsatisfied(problem) }
        if try await leftCordoned(node) { return .unsatisfied("\(node.name) is still cordoned by an interrupted upgrade") }
        return .satisfied(try outputs(node.entry))
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let node = try settings.access.controlPlane(context)
        if let token = settings.token { context.addSecret(token) }
        let exec = try exec(node.entry)
        // K3s's installer restarts only when binary, unit or env file changed during its own run: an
        // air-gap binary placed before it, or a service stopped by hand, would not be (re)started.
        var environment = ["INSTALL_K3S_VERSION": settings.spec.version, "INSTALL_K3S_EXEC": exec, "INSTALL_K3S_FORCE_RESTART": "true"]
        if settings.spec.airgap != nil { environment["INSTALL_K3S_SKIP_DOWNLOAD"] = "true" }
        let digest = settings.install.digest(exec: exec, extraEnvironment: [:])
        let recordPath = "\(K3sInstall.directory)/server.digest"
        let upgrade = NodeUpgrade(control: node, drainTimeout: settings.spec.drainTimeout)
        if try await node.read(recordPath).trimmingCharacters(in: .whitespacesAndNewlines) == digest, try await problem(node) == nil {
            context.log.write("\(node.name): K3s \(settings.spec.version) is installed as planned and answers; the install script is not run")
            if try await leftCordoned(node) {
                context.log.write("\(node.name): an interrupted upgrade left it cordoned")
                try await upgrade.putBack(node.name, log: context.log)
            }
            return try outputs(node.entry)
        }
        // A server that already runs (an upgrade, or other flags) is taken out of service first.
        var running: KubeNode?
        if try await !K3sAccess.installedVersion(on: node).isEmpty, try await K3sAccess.apiReady(on: node, until: .now + .seconds(5)) {
            running = try await K3sAccess.clusterNodes(on: node).first { $0.name == node.name }
        }
        if let running {
            try K3sVersion.refuseDowngrade(node: node.name, runs: running.version, planned: settings.spec.version)
            try await upgrade.takeOut(node.name, version: running.version, log: context.log)
        }
        do {
            let outputs = try await install(node, environment: environment, digest: digest, recordPath: recordPath, context: context)
            if running != nil { try await upgrade.putBack(node.name, log: context.log) }
            return outputs
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if running != nil { try? await upgrade.putBack(node.name, log: context.log) }
            throw error
        }
    }

    /// Runs the install script and waits until the API answers and the Node runs the pin.
    private func install(_ node: K3sNode, environment: [String: String], digest: String, recordPath: String, context: StepContext) async throws -> StepOutputs {
        var environment = environment
        if let token = settings.token { environment["K3S_TOKEN"] = token }
        let deadline = ContinuousClock.now + settings.spec.installTimeout
        try await settings.install.prepare(node, context)
        let outcome = try await settings.install.run(on: node, environment: environment, record: (digest, recordPath), deadline: deadline, log: context.log)
        switch outcome {
        case .finished:
            break
        case .failed(let status, let output):
            throw StepFailure("K3s's install script failed on \(node.name) (exit \(status)); its last lines:\n\(output)", retryable: false)
        case .timedOut:
            let serverLog = try await node.serviceLog("k3s")
            let tail = try await node.run("\(serverLog.tail(20)); tail -n 5 \(K3sInstall.log) 2>/dev/null", timeout: .seconds(20)).stdout
            throw StepFailure("the K3s server on \(node.name) did not start within \(settings.spec.installTimeout.formatted); last lines of \(serverLog.name):\n\(tail)",
                              retryable: false)
        }
        guard try await K3sAccess.apiReady(on: node, until: deadline) else {
            throw StepFailure("the API server on \(node.name) did not answer /readyz within \(settings.spec.installTimeout.formatted)", retryable: false)
        }
        // The Node says which version runs; it changes once the restarted server registers itself.
        while let problem = try await versionProblem(node, until: deadline) {
            guard ContinuousClock.now < deadline else {
                let running = try await K3sAccess.clusterNodes(on: node, until: deadline).first { $0.name == node.name }
                guard let running else { throw StepFailure("after the install: \(problem)", retryable: false) }
                throw StepFailure(K3sAccess.notRunningPlanned(node: node.name, service: "k3s", runs: running.version, planned: settings.spec.version), retryable: false)
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        if let problem = try await problem(node) { throw StepFailure("after the install: \(problem)", retryable: false) }
        context.log.write("\(node.name): K3s \(settings.spec.version) server installed; the API answers")
        return try outputs(node.entry)
    }
}
