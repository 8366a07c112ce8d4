import Engine
import Flows
import Foundation
import Infra
import NodeRuntime
import Transport
import Verification

extension Workspace {
    /// The recorded cluster and the services placed on it, for commands that reach the running
    /// pipeline (`verify`, `logs` of a service): nothing is changed and no lock is taken.
    private func pipeline() throws -> (store: SQLiteRunStore, inventory: ClusterInventory, runtime: ProcessesRuntime) {
        guard plan.runtime == .processes, let sandbox = plan.sandbox else {
            throw PipelineUnavailable(description: "plan '\(plan.name)' has no processes runtime (runtime: \(plan.runtime?.rawValue ?? "none")); "
                + "the pipeline runs on 'target: sandbox' plans for now")
        }
        guard hasStore else { throw PipelineUnavailable(description: "plan '\(plan.name)' has no runs yet; start one with 'provision up'") }
        let store = try openStore()
        guard let outputs = try store.steps()[TerraformApplyStep.id]?.outputs, !outputs.isEmpty,
              let inventory = try? ClusterInventory(outputs: outputs) else {
            throw PipelineUnavailable(description: "no machines are recorded for plan '\(plan.name)'; run 'provision up' first")
        }
        return (store, inventory, SandboxFlow.runtime(plan, sandbox: sandbox))
    }

    private func installer(_ pool: SSHPool, _ node: ClusterInventory.Node) throws -> ServiceInstaller {
        ServiceInstaller(pool: pool, endpoint: try node.endpoint(identityFile: SSHKeyStep.keyFile(stateDirectory).path), initSystem: node.initSystem ?? .openrc)
    }

    /// Runs the pipeline's verify checks now against the recorded cluster.
    /// - Parameter log: receives a line per check as it finishes.
    public func verifyPipeline(timeout: Duration = .seconds(150), log: (@Sendable (String) -> Void)? = nil) async throws -> [PipelineVerifier.Check] {
        if plan.runtime == .k3s { return try await verifyK3sPipeline(timeout: timeout, log: log) }
        let (store, inventory, runtime) = try pipeline()
        guard let control = inventory.controlPlane else { throw PipelineUnavailable(description: "the recorded cluster has no node") }
        let pool = SSHPool(store: store, parallelism: 4)
        var verifier = try VerifyStep.verifier(runtime: runtime, inventory: inventory, controlPlane: try installer(pool, control))
        verifier.timeout = timeout
        let checks = await verifier.run(log: log)
        // Closed before returning, never from a detached task: the command exits right after, and
        // exiting while another thread is inside libssh2's teardown can crash the process.
        await pool.closeAll()
        return checks
    }

    /// The web UIs of the running pipeline (Prometheus, Alertmanager, the processor), by name.
    public func pipelineURLs() throws -> [(name: String, url: String)] {
        let (_, inventory, _) = try pipeline()
        guard let control = inventory.controlPlane, let address = control.ssh?.host else { return [] }
        return [("Prometheus", "http://\(address):\(ProcessesRuntime.Port.prometheus)"),
                ("Alertmanager", "http://\(address):\(ProcessesRuntime.Port.alertmanager)"),
                ("processor", "http://\(address):\(ProcessesRuntime.Port.processor)/gpu/info")]
    }

    /// The checks the last `verify` step recorded, if it ran.
    public func recordedVerify() throws -> [PipelineVerifier.Check] {
        guard hasStore, let record = try openStore().steps()[VerifyStep.id] else { return [] }
        return VerifyStep.decode(record.outputs)
    }

    /// The node and unit log of a service step (`service.processor`, `service.producer/worker-1`),
    /// nil when `step` is not a service of this plan.
    public func serviceLog(of step: StepID) throws -> (node: String, file: String)? {
        guard step.rawValue.hasPrefix("service.") else { return nil }
        let (_, inventory, runtime) = try pipeline()
        let parts = step.rawValue.split(separator: "/", maxSplits: 1).map(String.init)
        guard let kind = ServiceStep.Kind(rawValue: String(parts[0].dropFirst("service.".count))) else { return nil }
        guard kind.perNode == (parts.count == 2) else { return nil }
        let upstream: [StepID: StepOutputs] = [TerraformApplyStep.id: inventory.outputs]
        let service = try ServiceStep(kind, node: parts.count == 2 ? parts[1] : nil, runtime: runtime, access: RuntimeAccess(ssh: nil)).placed(upstream)
        let initSystem = inventory.node(named: service.node.name)?.initSystem ?? .openrc
        return (service.node.name, ServiceControl(unit: service.unit, initSystem: initSystem).logName)
    }

    /// Streams the last `tail` lines of a service's own log from its node to `write`; with
    /// `follow`, keeps streaming what is appended until the task is cancelled.
    public func streamServiceLog(of step: StepID, tail: Int, follow: Bool, write: @Sendable (String) -> Void) async throws {
        guard let (nodeName, file) = try serviceLog(of: step) else {
            throw PipelineUnavailable(description: "\(step) is not a service of plan '\(plan.name)'")
        }
        let (store, inventory, _) = try pipeline()
        guard let node = inventory.node(named: nodeName) else { throw PipelineUnavailable(description: "node \(nodeName) is not recorded") }
        let pool = SSHPool(store: store, parallelism: 1)
        let installer = try installer(pool, node)
        if node.initSystem == .systemd {
            try await streamJournal(unit: String(file.dropFirst("journalctl -u ".count)), node: nodeName, installer: installer, tail: tail, follow: follow, write: write)
            await pool.closeAll()
            return
        }
        let quoted = Shell.quoted(file)
        let first = try await installer.run("tail -n \(tail) \(quoted); echo; wc -c < \(quoted)", .seconds(30))
        guard first.succeeded else {
            await pool.closeAll()
            throw PipelineUnavailable(description: "cannot read \(file) on \(nodeName): \(first.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var lines = first.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        var offset = Int(lines.popLast().flatMap { $0.isEmpty ? lines.popLast() : $0 } ?? "") ?? 0
        write("==> \(file) on \(nodeName) <==")
        lines.filter { !$0.isEmpty }.forEach { write(String($0)) }
        while follow && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let more = try await installer.run("tail -c +\(offset + 1) \(quoted) | head -c 1048576", .seconds(30))
            guard more.succeeded, !more.standardOutput.isEmpty else { continue }
            offset += more.standardOutput.count
            more.stdout.split(separator: "\n").forEach { write(String($0)) }
        }
        await pool.closeAll()
    }

    /// Streams a systemd unit's journal: its last `tail` lines, then (with `follow`) what it logs
    /// after the last cursor read, once a second, until the task is cancelled.
    private func streamJournal(unit: String, node: String, installer: ServiceInstaller, tail: Int, follow: Bool,
                               write: @Sendable (String) -> Void) async throws {
        var command = "journalctl -u \(unit) -n \(tail) --no-pager -q -o cat --show-cursor"
        write("==> journalctl -u \(unit) on \(node) <==")
        var cursor = ""
        repeat {
            let result = try await installer.run(command, .seconds(30))
            guard result.succeeded else {
                throw PipelineUnavailable(description: "cannot read journalctl -u \(unit) on \(node): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            for line in result.stdout.split(separator: "\n") {
                if line.hasPrefix("-- cursor: ") { cursor = String(line.dropFirst("-- cursor: ".count)) } else { write(String(line)) }
            }
            command = "journalctl -u \(unit) --no-pager -q -o cat --show-cursor" + (cursor.isEmpty ? "" : " --after-cursor=\(Shell.quoted(cursor))")
            if follow { try? await Task.sleep(for: .seconds(1)) }
        } while follow && !Task.isCancelled
    }
}
