@testable import App
@testable import Engine
import Foundation
@testable import Kube
import TestSupport
import Testing

/// What a real cluster does that the K3s steps must survive, on sandbox nodes against the K3s
/// stand-in (Tests/K3sStandIn): an API server that fails a share of the calls (`apiflaky`), Helm
/// installs whose first try fails (`helmretry`), and the installer's real restart rule on an
/// air-gap upgrade. Nothing here is real K3s.
@Suite(.serialized) struct SandboxK3sTransientTests {
    static let standin = StandIn.standin

    /// The nodes once `terraform.apply` recorded them (polled while `up` runs).
    static func nodesOnceCreated(_ sandbox: Sandbox, while process: CLI.Running) async throws -> SandboxNodes? {
        while process.isRunning {
            if let nodes = try? SandboxNodes(sandbox), nodes.inventory.controlPlane != nil { return nodes }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    /// Each node's name and the version it runs, as its Node reports it (`kubeletVersion`).
    static func running(_ nodes: SandboxNodes) async throws -> [String: String] {
        let list = try await nodes.run("k3s kubectl get nodes -o json", on: nodes.control).stdout
        return Dictionary(uniqueKeysWithValues: try KubeNode.list(Data(list.utf8)).map { ($0.name, $0.version) })
    }

    @Test func upWithAFlakyAPIAndAFailedFirstHelmTryOnEveryChartSucceedsAndAnAPIDownPastTheDeadlineFailsClusterReadyNamingTheLastError() async throws {
        var sandbox = Sandbox(name: "k3st-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, monitoring: true)

        // The faults go in as soon as the control plane's machine exists: before K3s is installed.
        let process = try sandbox.cli.start(["up", "--json", "--plan", sandbox.planPath])
        let nodes = try #require(try await Self.nodesOnceCreated(sandbox, while: process), "terraform.apply recorded no nodes")
        try await StandIn.fault("apiflaky 30\nhelmretry *", nodes)
        while process.isRunning { try await Task.sleep(for: .milliseconds(200)) }
        #expect(process.exitCode == 0, "\(process.stderr.suffix(3000)) \(process.stdout.suffix(3000))")
        let steps = try sandbox.store().steps()
        for id in ["k3s.server", "k3s.join/worker-1", "cluster.ready", "monitoring", "platform", "workloads"] {
            #expect(steps[StepID(id)]?.state == .succeeded, "\(id): \(steps[StepID(id)]?.lastError ?? "missing")")
        }
        let log = try await K3sSandbox.run(sandbox, ["logs", "monitoring"]).stdout
        for chart in SandboxK3sMonitoringTests.charts {
            // Seen while it retried, or (a busy machine's slower looks) by the failed pod the complete Job keeps.
            #expect(log.contains("chart \(chart): job helm-install-\(chart) retrying after an error") || log.contains("chart \(chart): job helm-install-\(chart) complete after 1 failed try"),
                    "\(chart) failed its first try: \(log.suffix(3000))")
            #expect(log.contains("chart \(chart): job helm-install-\(chart) complete"), "\(log.suffix(3000))")
        }
        #expect(try await SandboxK3sMonitoringTests.helmJobs(nodes).count == 3, "a retry is the same Job's next pod, not a new Job")

        // The API down for longer than cluster.ready's deadline: the step polls until then and names the last error.
        try await StandIn.fault("apiflaky 100", nodes)
        K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, monitoring: true, readyTimeout: "5s")
        let started = ContinuousClock.now
        let down = try await K3sSandbox.run(sandbox, ["up"])
        let took = ContinuousClock.now - started
        #expect(down.code == 1, "\(down.stderr.suffix(2000))")
        #expect(took >= .seconds(5) && took < .seconds(60), "fails at its 5 s deadline, not at once nor much later: \(took)")
        let error = try sandbox.store().steps()[ClusterReadyStep.id]?.lastError ?? ""
        #expect(error.contains("could not be read within 5") && error.contains("k3s.ready_timeout"), "\(error)")
        #expect(error.contains("The connection to the server 127.0.0.1:6443 was refused") || error.contains("etcdserver: leader changed"), "\(error)")
        #expect(error.contains("'k3s kubectl get --raw /readyz'") && error.contains("then run 'provision up'"), "\(error)")

        try await StandIn.fault("", nodes)
        let teardown = try await K3sSandbox.run(sandbox, ["down"])
        #expect(teardown.code == 0, "\(teardown.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func anAirGapUpgradeRestartsEveryNodeOnTheNewVersionAndANodeStillRunningTheOldOneFailsItsStepNamingBoth() async throws {
        var sandbox = Sandbox(name: "k3su-\(UInt16.random(in: 1000...65000))", workers: 2)
        defer { sandbox.cleanUp() }
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 2)
        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        #expect(try await Self.running(nodes) == ["control-plane": K3sSandbox.version, "worker-1": K3sSandbox.version, "worker-2": K3sSandbox.version])

        // The stand-in's installer follows K3s's rule: nothing changed during its run, so no restart.
        let rerun = try await nodes.run("""
            INSTALL_K3S_EXEC="$(sed -n 's/^command_args="\\(.*\\)"$/\\1/p' /etc/init.d/k3s)" INSTALL_K3S_SKIP_DOWNLOAD=true sh \(K3sInstall.script) 2>&1
            """, on: nodes.control)
        #expect(rerun.stdout.contains("No change detected so skipping service start"), "\(rerun.stdout)")

        // A new binary of another version (the air-gap upgrade: placed before the script runs).
        func binary(_ version: String) throws -> String {
            let text = try String(contentsOf: CLI.repository.appendingPathComponent("Tests/K3sStandIn/k3s"), encoding: .utf8)
                .replacingOccurrences(of: "VERSION = \"\(K3sSandbox.version)\"", with: "VERSION = \"\(version)\"")
            let path = sandbox.cli.write("k3s-\(version)", text)
            chmod(path, 0o755)
            return path
        }
        let next = "v1.33.5+k3s1"
        K3sSandbox.writePlan(sandbox, workers: 2, version: next, binary: try binary(next))
        let upgrade = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(upgrade.code == 0, "\(upgrade.failure)")
        #expect(try await Self.running(nodes) == ["control-plane": next, "worker-1": next, "worker-2": next], "every node runs the new version")

        // worker-1's restart leaves the old process running: its join fails naming both versions and the fix.
        _ = try await nodes.run("echo keep-old-process > /var/lib/k3s-standin/faults", on: try #require(nodes.inventory.node(named: "worker-1")))
        let later = "v1.33.6+k3s1"
        K3sSandbox.writePlan(sandbox, workers: 2, version: later, installTimeout: "15s", binary: try binary(later))
        let stuck = try await K3sSandbox.run(sandbox, ["up"])
        #expect(stuck.code == 1, "\(stuck.stderr.suffix(2000))")
        let error = try sandbox.store().steps()[StepID("k3s.join/worker-1")]?.lastError ?? ""
        for text in ["worker-1 runs K3s \(next) (its Node's status.nodeInfo.kubeletVersion), not \(later) that the plan pins",
                     "did not restart", "rc-service k3s-agent restart", "then run 'provision up'"] {
            #expect(error.contains(text), "no '\(text)' in \(error)")
        }
        let versions = try await Self.running(nodes)
        #expect(versions["control-plane"] == later && versions["worker-2"] == later && versions["worker-1"] == next, "\(versions)")

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
