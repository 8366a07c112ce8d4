@testable import App
@testable import Engine
import Foundation
@testable import Infra
@testable import Kube
import TestSupport
import Testing

/// `provision down --keep-infra` on `runtime: k3s` sandbox nodes (real sshd and OpenRC per node),
/// against the K3s stand-in in Tests/K3sStandIn given as airgap files: its install script writes
/// uninstall scripts the way K3s's does, and each of their runs adds a line to
/// /var/lib/provision-standin-uninstalls on its node. Nothing here is real K3s.
@Suite(.serialized) struct SandboxK3sKeepInfraTests {
    /// How many times each node ran a K3s uninstall script, and which.
    static func uninstalls(_ nodes: SandboxNodes) async throws -> [String: [String]] {
        var runs: [String: [String]] = [:]
        for node in nodes.inventory.nodes {
            let out = try await nodes.run("cat /var/lib/provision-standin-uninstalls 2>/dev/null || true", on: node).stdout
            runs[node.name] = out.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        }
        return runs
    }

    /// What of K3s is left on `node`: "" when nothing (no binary, service, data, configuration or process).
    static func k3sLeft(on node: ClusterInventory.Node, _ nodes: SandboxNodes) async throws -> String {
        try await nodes.run("""
            for f in /usr/local/bin/k3s /usr/local/bin/k3s-killall.sh /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh \
                     /etc/init.d/k3s /etc/init.d/k3s-agent /var/lib/rancher/k3s /etc/rancher/k3s \(K3sInstall.directory); do [ -e "$f" ] && echo "$f"; done
            pgrep -f '/usr/local/bin/k3s (server|agent)' >/dev/null && echo 'k3s processes'
            true
            """, on: node).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func downKeepInfraUninstallsK3sOnceFromKeptMachinesWorkersFirstAndUpReinstallsAndRedeploysThere() async throws {
        var sandbox = Sandbox(name: "k3sk-\(UInt16.random(in: 1000...65000))", workers: 2)
        defer { sandbox.cleanUp() }
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 2, deploy: tree.path)
        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        let machines = try sandbox.hosts()
        #expect(try await K3sSandbox.installs(nodes) == ["control-plane": 1, "worker-1": 1, "worker-2": 1])
        let rendered = try StandIn.rendered(tree)
        #expect(try await StandIn.held(nodes) == rendered)

        // down --keep-infra: the machine steps are kept, K3s is uninstalled from every node, once.
        let down = try await K3sSandbox.run(sandbox, ["down", "--keep-infra", "--json"])
        #expect(down.code == 0, "\(down.failure)")
        let outcomes = SandboxRuns.stepOutcomes(down)
        for id in ["ssh.key", "sandbox.cloud", "terraform.apply", "node.ready/control-plane", "node.ready/worker-1", "node.ready/worker-2"] {
            #expect(outcomes[id] == "kept", "\(id): \(outcomes)")
        }
        for id in ["k3s.server", "k3s.join/worker-1", "k3s.join/worker-2", "kubeconfig", "platform", "workloads"] {
            #expect(outcomes[id] == "applied", "\(id) torn down: \(outcomes)")
        }
        #expect(down.stdout.contains(#""kind":"step.kept""#))
        #expect(try sandbox.hosts() == machines, "the same hosts still run")
        #expect(try await sandbox.liveInstances().count == 3)
        for node in nodes.inventory.nodes {
            #expect(try await nodes.run("hostname", on: node).succeeded, "\(node.name) answers SSH")
            let left = try await Self.k3sLeft(on: node, nodes)
            #expect(left.isEmpty, "\(node.name) still has: \(left)")
        }
        // The applied objects went with the server's datastore.
        #expect(try await StandIn.held(nodes).isEmpty)
        let uninstalled = ["control-plane": ["k3s-uninstall.sh"], "worker-1": ["k3s-agent-uninstall.sh"], "worker-2": ["k3s-agent-uninstall.sh"]]
        #expect(try await Self.uninstalls(nodes) == uninstalled)

        // Workers first: each agent's teardown was recorded before the server's.
        let store = try sandbox.store()
        let run = try #require(try store.lastRun())
        #expect(run.command == .downKeepingInfra)
        let tornDown = try store.events(run: run.id, step: nil, limit: 10_000).filter { $0.kind == .stepTornDown }.compactMap(\.step)
        let server = try #require(tornDown.firstIndex(of: "k3s.server"))
        let workers = ["k3s.join/worker-1", "k3s.join/worker-2"].map { tornDown.firstIndex(of: $0) ?? .max }
        #expect(workers.allSatisfy { $0 < server }, "\(tornDown)")

        // status: the machines' steps still succeeded (kept), K3s's destroyed.
        let status = try await K3sSandbox.run(sandbox, ["status", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect((object["run"] as? [String: Any])?["command"] as? String == "down --keep-infra")
        let states = ((object["steps"] as? [[String: Any]]) ?? []).reduce(into: [String: String]()) { $0[$1["id"] as? String ?? ""] = $1["state"] as? String }
        #expect(states["terraform.apply"] == "succeeded" && states["node.ready/worker-1"] == "succeeded", "\(states)")
        #expect(states["k3s.server"] == "destroyed" && states["k3s.join/worker-2"] == "destroyed", "\(states)")

        // Again: nothing left to tear down, no uninstall script runs.
        let again = try await K3sSandbox.run(sandbox, ["down", "--keep-infra", "--json"])
        #expect(again.code == 0, "\(again.failure)")
        #expect(SandboxRuns.applied(again).isEmpty, "\(SandboxRuns.stepOutcomes(again))")
        #expect(try await Self.uninstalls(nodes) == uninstalled)

        // up: the kept machines are unchanged; K3s is installed on each once more and the cluster is whole.
        let reinstall = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(reinstall.code == 0, "\(reinstall.failure)")
        let applied = SandboxRuns.applied(reinstall)
        #expect(applied.isSuperset(of: ["k3s.server", "k3s.join/worker-1", "k3s.join/worker-2", "kubeconfig", "platform", "workloads"]), "\(applied)")
        #expect(applied.isDisjoint(with: ["terraform.apply", "node.ready/control-plane", "node.ready/worker-1", "node.ready/worker-2"]), "\(applied)")
        #expect(try sandbox.hosts() == machines)
        #expect(try await K3sSandbox.installs(nodes) == ["control-plane": 2, "worker-1": 2, "worker-2": 2])
        let cluster = try await nodes.run("k3s kubectl get nodes -o json", on: nodes.control).stdout
        #expect(try KubeNode.list(Data(cluster.utf8)).filter(\.isReady).count == 3)
        #expect(try await StandIn.held(nodes) == rendered, "deployed again")

        // A plain down: the machines go too, and K3s's teardowns uninstall nothing first.
        let plain = try await K3sSandbox.run(sandbox, ["down", "--json"])
        #expect(plain.code == 0, "\(plain.failure)")
        #expect(SandboxRuns.stepOutcomes(plain)["terraform.apply"] == "applied")
        let serverLog = try await K3sSandbox.run(sandbox, ["logs", "k3s.server"]).stdout
        let last = serverLog.split(separator: "\n").last { $0.contains("uninstall") } ?? ""
        #expect(last.contains("K3s is not uninstalled first"), "\(serverLog.suffix(1500))")
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func downHelpDocumentsKeepInfra() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let help = try await cli.run([CLI.binary, "help", "down"], executable: "/usr/bin/env")
        #expect(help.code == 0)
        #expect(help.stdout.contains("--keep-infra") && help.stdout.contains("K3s's uninstall scripts"), "\(help.stdout)")
    }
}
