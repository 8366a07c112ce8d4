@testable import App
@testable import Engine
import Foundation
@testable import Infra
import TestSupport
@testable import Transport

/// The cluster as recorded, and a pool to reach its nodes.
struct SandboxNodes {
    let inventory: ClusterInventory
    let pool: SSHPool
    let key: String

    init(_ sandbox: Sandbox) throws {
        let store = try sandbox.store()
        inventory = try ClusterInventory(outputs: try store.steps()[TerraformApplyStep.id]?.outputs ?? [:])
        pool = SSHPool(store: store, parallelism: 4)
        key = sandbox.stateDirectory.appendingPathComponent("ssh/id_ed25519").path
    }

    var control: ClusterInventory.Node { inventory.controlPlane! }
    var address: String { control.ssh!.host }

    func run(_ command: String, on node: ClusterInventory.Node, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        try await pool.run(command, on: try node.endpoint(identityFile: key), timeout: timeout)
    }

    /// The PID of every pipeline unit's program on every node, by `node/unit`.
    func unitPIDs() async throws -> [String: String] {
        var pids: [String: String] = [:]
        for node in inventory.nodes {
            let out = try await run("""
                for f in /run/supervise-pipeline-*.pid; do u=${f#/run/supervise-}; echo "${u%.pid} $(pgrep -P "$(cat "$f")" | head -n 1)"; done
                """, on: node).stdout
            for line in out.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2 { pids["\(node.name)/\(parts[0])"] = String(parts[1]) }
            }
        }
        return pids
    }

    /// /stats of the processor: documents of both collections together.
    func stored() async -> Int? {
        guard let (status, body) = await Self.get("http://\(address):8080/stats"), status == 200,
              let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return nil }
        return (object["gpu_metrics"] as? Int ?? 0) + (object["token_usage"] as? Int ?? 0)
    }

    /// `processor_consumer_lag_records` from the processor's /metrics.
    func lag() async -> Int? {
        guard let (_, body) = await Self.get("http://\(address):8080/metrics") else { return nil }
        return body.split(separator: "\n").first { $0.hasPrefix("processor_consumer_lag_records ") }.flatMap { Int($0.split(separator: " ")[1]) }
    }

    /// GET off the cooperative pool (libcurl on a dispatch queue): blocking a cooperative
    /// thread here would stall every other test in a parallel run.
    static func get(_ url: String) async -> (Int, String)? {
        guard let response = try? await HTTPClient(timeout: .seconds(5)).send("GET", url) else { return nil }
        return (response.status, response.text)
    }
}
