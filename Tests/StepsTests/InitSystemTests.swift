@testable import App
import Engine
import Foundation
@testable import Infra
@testable import Kube
@testable import PlanLanguage
import Testing

/// `sandbox.init`, the inventory's record of each node's init, and where a K3s service's log is
/// read for each init: pure logic, no node.
@Suite struct InitSystemTests {
    @Test func sandboxInitDefaultsToOpenRCAndSystemdPicksItsOwnImage() throws {
        let base = "name: p\ntarget: sandbox\nruntime: none\ncluster: {worker_count: 1}\n"
        let openrc = try PlanLoader.parse(Data(base.utf8), path: "plans/t.yaml")
        #expect(openrc.sandbox?.initSystem == .openrc && openrc.sandbox?.nodeImage == "../.tools/node-image")
        let systemd = try PlanLoader.parse(Data((base + "sandbox: {init: systemd}\n").utf8), path: "plans/t.yaml")
        #expect(systemd.sandbox?.initSystem == .systemd && systemd.sandbox?.nodeImage == "../.tools/node-image-systemd")
        let own = try PlanLoader.parse(Data((base + "sandbox: {init: systemd, node_image: /images/mine}\n").utf8), path: "plans/t.yaml")
        #expect(own.sandbox?.nodeImage == "/images/mine", "an explicit node image wins")
    }

    @Test func anUnknownInitIsRefusedWithTheChoices() throws {
        let bad = try #require(planError("name: p\ntarget: sandbox\nruntime: none\ncluster: {worker_count: 1}\nsandbox:\n  init: upstart\n"))
        #expect(bad.line == 6 && bad.message.contains("openrc or systemd"))
    }

    @Test func containerNodesGetTheSandboxOnlyTerraformVariable() throws {
        let base = "name: p\ntarget: sandbox\nruntime: none\ncluster: {worker_count: 1}\n"
        for (extra, expected) in [("", false), ("sandbox: {init: systemd}\n", true)] {
            let plan = try PlanLoader.parse(Data((base + extra).utf8), path: "plans/t.yaml")
            let step = TerraformApplyStep(planName: "p", target: .sandbox, cluster: try #require(plan.cluster), sandbox: plan.sandbox,
                                          moduleSource: repositoryRoot.appendingPathComponent("terraform"), nodeImage: nil)
            #expect((step.staticVariables["sandbox_container_node"] != nil) == expected, "\(extra)")
        }
    }

    @Test func theInventoryKeepsEachNodesInit() throws {
        var inventory = ClusterInventory(nodes: [
            .init(name: "control-plane", role: "server", instanceID: "i-1", publicAddress: "", privateAddress: "10.0.0.1"),
            .init(name: "worker-1", role: "agent", instanceID: "i-2", publicAddress: "", privateAddress: "10.0.0.2"),
        ])
        inventory.nodes[0].initSystem = .systemd
        let decoded = try ClusterInventory(outputs: inventory.outputs)
        #expect(decoded.nodes.map(\.initSystem) == [.systemd, nil], "recorded where known, absent (node.ready detects it) otherwise")
    }

    @Test func aServicesLogIsJournaldUnderSystemdAndItsFileUnderOpenRC() {
        let journal = ServiceLog(unit: "k3s-agent", initSystem: .systemd)
        #expect(journal.name == "journalctl -u k3s-agent")
        #expect(journal.since("s=abc;i=1", lines: 12) == "journalctl -u k3s-agent --after-cursor='s=abc;i=1' --no-pager -q -o cat 2>/dev/null | tail -n 12")
        #expect(journal.since("", lines: 12).hasPrefix("journalctl -u k3s-agent --no-pager"), "no mark: everything it logged")
        let file = ServiceLog(unit: "k3s-agent", initSystem: .openrc)
        #expect(file.name == "/var/log/k3s-agent.log")
        #expect(file.since("100", lines: 12) == "tail -c +101 /var/log/k3s-agent.log 2>/dev/null | tail -n 12")
        let message = AgentLogCause.nodePasswordRejected.message(worker: "worker-2", server: "control-plane", url: "https://10.0.0.1:6443",
                                                                  deadline: .seconds(15), tokenSecret: nil, logFile: journal.name, tail: "x")
        #expect(message.contains("last lines of journalctl -u k3s-agent:"))
    }
}
