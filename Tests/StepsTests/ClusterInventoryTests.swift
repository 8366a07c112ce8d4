@testable import App
import Engine
import Foundation
@testable import Infra
import Testing

/// The typed cluster inventory: one encoding, the same value after a trip through the run store.
@Suite struct ClusterInventoryTests {
    let inventory = ClusterInventory(nodes: [
        .init(name: "control-plane", role: "control-plane", instanceID: "i-0a", publicAddress: "203.0.113.10", privateAddress: "10.0.1.10",
              ssh: .init(host: "203.0.113.10", port: 22, user: "ubuntu", pinKey: "i-0a")),
        .init(name: "worker-1", role: "worker", instanceID: "i-0b", publicAddress: "", privateAddress: "10.0.1.11",
              ssh: .init(host: "10.0.1.11", port: 2222, user: "ubuntu", pinKey: "i-0b",
                         bastion: .init(host: "203.0.113.10", port: 22, pinKey: "i-0a"))),
        .init(name: "worker-2", role: "worker", instanceID: "i-0c", publicAddress: "203.0.113.12", privateAddress: "10.0.1.12"),
    ], vpcID: "vpc-1")

    @Test func inventoryRoundTripsThroughTheRunStore() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("inventory-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteRunStore(directory: directory)
        let run = try store.beginRun(command: .up, planPath: "p.yaml", planText: "name: p")
        try store.markSucceeded(TerraformApplyStep.id, run: run.id, fingerprint: "f", outputs: inventory.outputs, duration: .zero, adopted: false)

        let decoded = try #require(try ClusterInventory.recorded(in: SQLiteRunStore(directory: directory)))
        #expect(decoded == inventory)
        #expect(decoded.nodes.map(\.name) == ["control-plane", "worker-1", "worker-2"], "control plane first, as terraform lists them")
    }

    @Test func terraformsOwnOutputsDecodeWithoutRoutesAndNodesGiveTheirEndpoint() throws {
        let terraform: StepOutputs = [
            "node_names": .list([.string("control-plane"), .string("worker-1")]),
            "nodes": .map([
                "control-plane": .map(["id": .string("i-1"), "role": .string("control-plane"), "public_ip": .string("1.2.3.4"), "private_ip": .string("10.0.0.1")]),
                "worker-1": .map(["id": .string("i-2"), "role": .string("worker"), "public_ip": .string(""), "private_ip": .string("10.0.0.2")]),
            ]),
        ]
        let decoded = try ClusterInventory(outputs: terraform)
        #expect(decoded.nodes.map(\.instanceID) == ["i-1", "i-2"] && decoded.nodes.allSatisfy { $0.ssh == nil })
        #expect(throws: StepFailure.self) { try decoded.nodes[0].endpoint(identityFile: "/k") }

        let worker = try #require(inventory.node(named: "worker-1"))
        let endpoint = try worker.endpoint(identityFile: "/k")
        #expect(endpoint.host == "10.0.1.11" && endpoint.port == 2222 && endpoint.pinKey == "i-0b")
        #expect(endpoint.proxyJump.first?.host == "203.0.113.10" && endpoint.proxyJump.first?.pinKey == "i-0a")
        #expect(ClusterInventory.share(of: "worker-1", in: inventory.outputs).keys.sorted() == ["node", "ssh"])
    }
}
