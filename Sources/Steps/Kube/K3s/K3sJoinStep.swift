import Engine
import Foundation
import Infra
import NodeRuntime
import Transport

/// `k3s.join/<worker>`: the K3s agent on one worker, joined to the server (`K3S_URL` on the
/// server's cluster address, `K3S_TOKEN`), same version. The fan-out's children run in parallel.
///
/// K3s's install script blocks for ever when an agent cannot join, so it runs under
/// `k3s.install_timeout`; when that runs out, the agent's log says why ("Node password
/// rejected", a refused token, an unreachable server) and the error gives the fix.
/// `check`: the node is Ready in the cluster and runs the pinned version (its Node's
/// `kubeletVersion`). The install script always runs with `INSTALL_K3S_FORCE_RESTART=true`: K3s's
/// installer skips the restart when binary, unit and env file did not change during its run, which
/// is the case for an air-gap binary placed before it.
///
/// A worker already in the cluster whose install changes (a new `k3s.version`, other flags) is
/// upgraded rolling: at most `k3s.max_unavailable` at once (`UpgradeGate`), each cordoned and
/// drained first and uncordoned once Ready on the new version (`NodeUpgrade`); a downgrade is
/// refused. A cordon an interrupted upgrade left is finished by the next run (`check` reports it).
///
/// Teardown: only under `down --keep-infra` (otherwise the machine goes with terraform.apply's
/// teardown), K3s's `k3s-agent-uninstall.sh` on the worker (`K3sUninstall`), before the server's.
package struct K3sJoinStep: Step {
    package static let id = StepID("k3s.join")
    /// The agent's unit (K3s's install script writes it; its log is journald's under systemd,
    /// /var/log/k3s-agent.log under OpenRC).
    static let agentUnit = "k3s-agent"

    package let id: StepID
    let worker: String
    let settings: K3sSettings

    package init(worker: String, settings: K3sSettings) {
        self.id = Self.id.child(worker)
        self.worker = worker
        self.settings = settings
    }

    package var dependencies: [StepID] { [TerraformApplyStep.id, NodeReadyStep.id, K3sServerStep.id] }
    package var inputs: String { "\(settings.inputs) join \(worker)" }
    package var planKeys: [String: String] { settings.planKeys }
    package var hasCheck: Bool { true }
    package var hasTeardown: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(2), maxBackoff: .seconds(5)) }

    /// This worker's and the control plane's machines, the server's outputs: adding a worker runs
    /// only the new worker's join.
    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        let control = (try? RuntimeAccess.inventory(upstream))?.controlPlane?.name ?? ""
        return RuntimeAccess.scope(upstream) { _ in [worker, control] }.filter { id, _ in
            id == TerraformApplyStep.id || id == K3sServerStep.id || id == NodeReadyStep.id.child(worker)
        }
    }

    /// `INSTALL_K3S_EXEC` for this worker.
    func exec(_ node: ClusterInventory.Node) throws -> String {
        ["agent", "--node-name", worker, "--node-ip", try settings.access.clusterAddress(node)].joined(separator: " ")
    }

    /// Where the control plane records which machine (instance id) joined as this worker.
    private var joinedAsPath: String { "\(K3sInstall.directory)/joined/\(worker)" }

    private func remember(_ node: K3sNode, on control: K3sNode) async throws {
        try await control.must("mkdir -p \(K3sInstall.directory)/joined && echo \(Shell.quoted(node.entry.instanceID)) > \(joinedAsPath)",
                               "recording \(worker)'s machine")
    }

    /// A worker whose machine was re-created (the inventory has another instance under its name)
    /// has a new node password that the server would reject ("Node password rejected"): its stale
    /// node object is deleted first, which removes the server's record of the old password.
    private func forgetIfReplaced(_ node: K3sNode, on control: K3sNode, context: StepContext) async throws {
        let log = context.log
        let joinedAs = try await control.read(joinedAsPath).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !joinedAs.isEmpty, joinedAs != node.entry.instanceID, try await clusterNode(context) != nil else { return }
        log.write("\(worker) is machine \(node.entry.instanceID) now but joined as \(joinedAs): deleting its stale node object so that its new node password is accepted")
        try await control.kube().delete("node", worker, what: "deleting the stale node \(worker)", timeout: .seconds(30))
    }

    /// The error of an agent that did not join in time: the cause its log names since this attempt
    /// began (`mark`: an older cause may have been fixed since), with the fix.
    private func notJoined(node: K3sNode, control: K3sNode, url: String, timeout: Duration, log: ServiceLog, mark: String) async throws -> StepFailure {
        let recent = try await node.run(log.since(mark, lines: 12), timeout: .seconds(20)).stdout
        let tail = recent.isEmpty ? try await node.run(log.tail(12), timeout: .seconds(20)).stdout : recent
        let cause = AgentLogCause(log: recent)
        return StepFailure(cause.message(worker: worker, server: control.name, url: url, deadline: timeout, tokenSecret: settings.spec.tokenSecret,
                                         logFile: log.name, tail: tail), retryable: false)
    }

    private var outputs: StepOutputs { ["node_name": .string(worker), "version": .string(settings.spec.version)] }

    /// This worker as the cluster reports it, or nil (transient API errors retried until `deadline`).
    /// From the run's `NodeWatch`, the listing every join shares; asked alone when that failed.
    /// `since`: only a listing begun after it counts (the install's end).
    private func clusterNode(_ context: StepContext, until deadline: ContinuousClock.Instant? = nil,
                             since: ContinuousClock.Instant? = nil) async throws -> KubeNode? {
        let control = try settings.access.controlPlane(context, readOnly: true)
        let nodes: [KubeNode]
        do {
            nodes = try await settings.access.nodeWatch.nodes(since: since) { try await K3sAccess.clusterNodes(on: control, until: deadline) }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            nodes = try await K3sAccess.clusterNodes(on: control, until: deadline)
        }
        return nodes.first { $0.name == worker }
    }

    private func problem(_ node: KubeNode?) -> String? {
        guard let node else { return "\(worker) is not in the cluster" }
        if node.version != settings.spec.version { return "\(worker) runs K3s \(node.version), the plan pins \(settings.spec.version)" }
        if !node.isReady { return "\(worker) is \(node.condition)" }
        return nil
    }

    package func teardown(_ context: StepContext) async throws {
        guard context.keepsInfrastructure else {
            context.log.write("\(worker)'s machine is removed with terraform.apply's teardown: its agent is not uninstalled first")
            return
        }
        try await K3sUninstall.run(.agent, on: try settings.access.node(worker, context), log: context.log)
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let node = try await clusterNode(context)
        if let problem = problem(node) { return .unsatisfied(problem) }
        if node?.unschedulable == true, try await NodeUpgrade.leftCordoned(on: try settings.access.controlPlane(context, readOnly: true)).contains(worker) {
            return .unsatisfied("\(worker) is still cordoned by an interrupted upgrade")
        }
        return .satisfied(outputs)
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        do {
            return try await applyRolling(context)
        } catch {
            // Whatever ended this attempt, this worker holds the gate no more (nor counts as left
            // cordoned): the others must not wait for it.
            await settings.access.upgradeGate.release(worker)
            throw error
        }
    }

    private func applyRolling(_ context: StepContext) async throws -> StepOutputs {
        let control = try settings.access.controlPlane(context)
        let node = try settings.access.node(worker, context)
        let url = "https://\(try settings.access.clusterAddress(control.entry)):6443"
        let exec = try exec(node.entry)
        let digest = settings.install.digest(exec: exec, extraEnvironment: ["K3S_URL": url])
        let recordPath = "\(K3sInstall.directory)/agent.digest"
        let current = try await clusterNode(context)
        let upgrade = NodeUpgrade(control: control, drainTimeout: settings.spec.drainTimeout)
        let gate = settings.access.upgradeGate
        if try await node.read(recordPath).trimmingCharacters(in: .whitespacesAndNewlines) == digest, problem(current) == nil {
            try await remember(node, on: control)
            context.log.write("\(worker): the agent is installed as planned and Ready; the install script is not run")
            if current?.unschedulable == true, try await NodeUpgrade.leftCordoned(on: control).contains(worker) {
                context.log.write("\(worker): an interrupted upgrade left it cordoned")
                try await upgrade.putBack(worker, log: context.log)
                await gate.release(worker)
            }
            return outputs
        }
        guard let current else { return try await join(node: node, control: control, url: url, exec: exec, record: (digest, recordPath), context: context) }
        // In the cluster already: a rolling upgrade (or reconfiguration) of this worker.
        try K3sVersion.refuseDowngrade(node: worker, runs: current.version, planned: settings.spec.version)
        try await gate.acquire(worker) { try await NodeUpgrade.leftCordoned(on: control) }
        do {
            try await upgrade.takeOut(worker, version: current.version, log: context.log)
            let outputs = try await join(node: node, control: control, url: url, exec: exec, record: (digest, recordPath), context: context)
            try await upgrade.putBack(worker, log: context.log)
            await gate.release(worker)
            return outputs
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            try? await upgrade.putBack(worker, log: context.log)
            throw error
        }
    }

    /// Installs the agent (a first join, or the reinstall of an upgrade) and waits until the node is Ready on the pinned version.
    private func join(node: K3sNode, control: K3sNode, url: String, exec: String, record: (String, String), context: StepContext) async throws -> StepOutputs {
        let (digest, recordPath) = record
        try await forgetIfReplaced(node, on: control, context: context)
        let agentLog = try await node.serviceLog(Self.agentUnit)
        let logMark = try await node.run(agentLog.markCommand, timeout: .seconds(20)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let token = try await settings.access.token(planToken: settings.token, control: control, context: context)
        // Without it, K3s's installer does not restart an agent whose air-gap binary was replaced before it ran.
        var environment = ["INSTALL_K3S_VERSION": settings.spec.version, "INSTALL_K3S_EXEC": exec, "K3S_URL": url, "K3S_TOKEN": token,
                           "INSTALL_K3S_FORCE_RESTART": "true"]
        if settings.spec.airgap != nil { environment["INSTALL_K3S_SKIP_DOWNLOAD"] = "true" }
        let timeout = settings.spec.installTimeout
        let deadline = ContinuousClock.now + timeout
        try await settings.install.prepare(node, context)
        switch try await settings.install.run(on: node, environment: environment, record: (digest, recordPath), deadline: deadline, log: context.log) {
        case .finished:
            break
        case .failed(let status, let output):
            throw StepFailure("K3s's install script failed on \(worker) (exit \(status)); its last lines:\n\(output)", retryable: false)
        case .timedOut:
            throw try await notJoined(node: node, control: control, url: url, timeout: timeout, log: agentLog, mark: logMark)
        }
        // Registered (or the script found nothing to change); now Ready with the pinned version,
        // within what is left of the deadline, as a listing begun after the install ended says.
        let installed = ContinuousClock.now
        context.log.write("\(worker): the install script ended; waiting for the node to be Ready")
        while let problem = problem(try await clusterNode(context, until: deadline, since: installed)) {
            guard ContinuousClock.now < deadline else {
                if let running = try await clusterNode(context, until: deadline, since: installed), running.version != settings.spec.version {
                    throw StepFailure(K3sAccess.notRunningPlanned(node: worker, service: "k3s-agent", runs: running.version, planned: settings.spec.version),
                                      retryable: false)
                }
                guard try await clusterNode(context, until: deadline, since: installed) == nil else {
                    throw StepFailure("\(problem) \(timeout.formatted) after its install began; see \(Kubectl.shown("describe node \(worker)")) on \(control.name)",
                                      retryable: false)
                }
                throw try await notJoined(node: node, control: control, url: url, timeout: timeout, log: agentLog, mark: logMark)
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        try await remember(node, on: control)
        context.log.write("\(worker): joined, Ready, K3s \(settings.spec.version)")
        return outputs
    }
}
