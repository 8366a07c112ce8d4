@testable import App
@testable import Engine
import Foundation
@testable import Infra
@testable import PlanLanguage
import TestSupport
import Testing

extension SandboxSelfHealingTests {
    /// Faults that plain `up` repairs in a running sandbox pipeline: the broker's topics deleted, a
    /// service supervisor killed and then its orphan, the database stopped (its alert fires first).
    /// The broker keeps its log in memory here (none of these restarts it). Nested in the serialized
    /// `SandboxSelfHealingTests`: one of these sandboxes at a time beside the rest of the run.
    @Suite struct Repair {
        typealias Nodes = SandboxNodes

        /// Every process on `node` running `program`, with its parent's command name (`pid ppid parent`).
        static func processes(of program: String, on node: ClusterInventory.Node, _ nodes: Nodes) async throws -> [String] {
            try await nodes.run("""
                for p in $(pgrep -f '^\(program)( |$)'); do echo "$p $(ps -o ppid= -p $p | tr -d ' ') $(ps -o comm= -p $(ps -o ppid= -p $p))"; done
                """, on: node).stdout.split(separator: "\n").map(String.init)
        }

        /// The alerts of Prometheus on the control plane: name → state (pending, firing).
        static func alerts(_ nodes: Nodes) async -> [String: String] {
            guard let (_, body) = await Nodes.get("http://\(nodes.address):9090/api/v1/alerts"),
                  let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let list = (object["data"] as? [String: Any])?["alerts"] as? [[String: Any]] else { return [:] }
            return list.reduce(into: [:]) { result, alert in
                if let name = (alert["labels"] as? [String: Any])?["alertname"] as? String { result[name] = alert["state"] as? String }
            }
        }

        @Test func topicsDeletedAreCreatedAgainByUpAndTheirNewRecordsAreAllStoredAndAWrongPartitionCountIsNamed() async throws {
            let sandbox = FaultSandbox.make("heal-topics", durable: false)
            defer { sandbox.cleanUp() }
            let up = try await FaultSandbox.firstUp(sandbox)
            #expect(up.code == 0, "\(up.failure)")
            let nodes = try Nodes(sandbox)
            defer { Task { await nodes.pool.closeAll() } }
            let broker = "--broker tcp://\(nodes.address):9092"
            try await waitUntil(timeout: .seconds(60), every: .seconds(1)) { (await nodes.stored() ?? 0) > 300 }

            // The broker's data lost: every topic deleted while the producers run. No client may
            // create them again (with its own partition count); the next plain `up` does.
            for topic in PipelineSpec.topics {
                let deleted = try await nodes.run("/usr/local/bin/tansu topic delete \(topic) \(broker)", on: nodes.control)
                #expect(deleted.succeeded, "\(deleted.stderr)")
            }
            try await Task.sleep(for: .seconds(8))
            let meanwhile = try await nodes.run("/usr/local/bin/tansu topic list \(broker)", on: nodes.control).stdout
            #expect(!PipelineSpec.topics.contains { meanwhile.contains("\"\($0)\"") }, "no client created a topic: \(meanwhile)")
            let audit = try await sandbox.run(["status", "--audit"])
            #expect(audit.code == 6 && audit.stdout.split(separator: "\n").contains { $0.hasPrefix("service.broker ") && $0.contains("DRIFT") }, "\(audit.stdout)")

            let repaired = try await sandbox.run(["up", "--json"])
            #expect(repaired.code == 0, "\(repaired.failure)")
            #expect(SandboxRuns.applied(repaired).isSuperset(of: ["service.broker", "verify"]), "\(SandboxRuns.stepOutcomes(repaired))")
            let list = try await nodes.run("/usr/local/bin/tansu topic list \(broker)", on: nodes.control).stdout
            let topics = (try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]] ?? [])
                .reduce(into: [String: Int]()) { $0[$1["name"] as? String ?? ""] = ($1["partitions"] as? [Any])?.count }
            for topic in PipelineSpec.topics { #expect(topics[topic] == 3, "\(topic): \(list)") }

            // Records of the new incarnation are stored, every event of it, none taken for a
            // duplicate of the old one's; the old documents stay. (Judged by the events themselves:
            // a record of the old incarnation consumed after another partition showed the new one is
            // stamped with the new topic id, docs/self-healing.md.)
            try await FaultSandbox.drain(nodes)
            let ledger = try await FlowLedger.read(nodes, cli: sandbox.cli, broker: true)
            for collection in ["gpu_metrics", "token_usage"] {
                let incarnations = ledger.incarnations[collection] ?? [:]
                #expect(incarnations.count == 2, "\(collection): the topic's two incarnations: \(incarnations.keys.sorted())")
                let current = try #require(ledger.broker[collection])
                let missing = current.events.subtracting(ledger.events[collection] ?? [])
                #expect(!current.records.isEmpty && !current.events.isEmpty && missing.isEmpty,
                        "\(collection): every event of the new incarnation \(current.id) stored: \(missing.count) of \(current.events.count) missing, e.g. \(missing.sorted().prefix(5)); broker \(current.records)")
                #expect(incarnations.contains { $0.key != current.id && !$0.value.isEmpty }, "the old documents stay: \(incarnations.keys.sorted())")
            }
            #expect(ledger.stored.values.allSatisfy { $0.duplicates == 0 }, "\(ledger.stored)")

            // A topic made by hand with another partition count: `up` cannot take partitions away, and says so.
            _ = try await nodes.run("/usr/local/bin/tansu topic delete token.usage.v1 \(broker) && /usr/local/bin/tansu topic create token.usage.v1 --partitions 4 \(broker)",
                                    on: nodes.control)
            let refused = try await sandbox.run(["up"])
            #expect(refused.code != 0)
            let said = refused.stdout + refused.stderr
            #expect(said.contains("topic token.usage.v1 has 4 partitions, the plan says 3") && said.contains("topic delete token.usage.v1"), "\(said.suffix(2000))")
            #expect(try await sandbox.run(["down"]).code == 0)
        }

        @Test func aKilledSupervisorAndThenItsOrphanLeaveTheUnitRunningUnderItsSupervisorAfterUp() async throws {
            let sandbox = FaultSandbox.make("heal-super", durable: false)
            defer { sandbox.cleanUp() }
            let up = try await FaultSandbox.firstUp(sandbox)
            #expect(up.code == 0, "\(up.failure)")
            let nodes = try Nodes(sandbox)
            defer { Task { await nodes.pool.closeAll() } }
            let program = "/opt/provision/bin/processor"

            for killOrphanToo in [false, true] {
                let orphan = try await FaultSandbox.child("pipeline-processor", on: nodes.control, nodes)
                _ = try await nodes.run("kill -9 $(cat /run/supervise-pipeline-processor.pid)", on: nodes.control)
                if killOrphanToo { _ = try await nodes.run("kill -9 \(orphan)", on: nodes.control) }
                let audit = try await sandbox.run(["status", "--audit"])
                #expect(audit.code == 6, "\(audit.stdout)")
                #expect(audit.stdout.split(separator: "\n").contains { $0.hasPrefix("service.processor ") && $0.contains("not running") }, "\(audit.stdout)")

                let repaired = try await sandbox.run(["up", "--json"])
                #expect(repaired.code == 0, "orphan killed too: \(killOrphanToo): \(repaired.failure)")
                #expect(SandboxRuns.applied(repaired).contains("service.processor"), "\(SandboxRuns.stepOutcomes(repaired))")
                let running = try await Self.processes(of: program, on: nodes.control, nodes)
                let supervisor = try await nodes.run("cat /run/supervise-pipeline-processor.pid", on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(running.count == 1 && running.first?.split(separator: " ").dropFirst().first.map(String.init) == supervisor,
                        "one processor, its parent the unit's supervisor \(supervisor): \(running)")
                #expect(!running.contains { $0.hasPrefix("\(orphan) ") }, "the orphan \(orphan) is gone: \(running)")
                let status = try await nodes.run("rc-service pipeline-processor status", on: nodes.control)
                #expect(status.succeeded, "\(status.stdout)\(status.stderr)")
                #expect(try await sandbox.run(["status", "--audit"]).code == 0)
            }
            #expect(try await sandbox.run(["down"]).code == 0)
        }

        @Test func aStoppedDatabaseFiresPipelineFlowStoppedInTheSandboxsPrometheusAndUpRepairsTheFlow() async throws {
            let sandbox = FaultSandbox.make("heal-alert", durable: false)
            defer { sandbox.cleanUp() }
            let up = try await FaultSandbox.firstUp(sandbox)
            #expect(up.code == 0, "\(up.failure)")
            let nodes = try Nodes(sandbox)
            defer { Task { await nodes.pool.closeAll() } }
            #expect(await Self.alerts(nodes)["PipelineFlowStopped"] == nil)

            // Producers keep producing, the processor cannot store: records wait, nothing is stored.
            _ = try await nodes.run("rc-service pipeline-mongodb stop", on: nodes.control)
            let stopped = ContinuousClock.now
            try await waitUntil(timeout: .seconds(360), every: .seconds(5)) {
                await Self.alerts(nodes)["PipelineFlowStopped"] == "firing"
            }
            print("PipelineFlowStopped fired \(ContinuousClock.now - stopped) after the database stopped")

            // `up` restarts the database; its verify may still see the outage's alerts firing (they
            // resolve on their own windows), so the flow is judged by verify's other checks.
            let repaired = try await sandbox.run(["up", "--json"])
            let outcomes = SandboxRuns.stepOutcomes(repaired)
            #expect(outcomes["service.mongodb"] == "applied", "\(outcomes)")
            try await waitUntil(timeout: .seconds(300), every: .seconds(5)) {
                await Self.alerts(nodes)["PipelineFlowStopped"] == nil
            }
            try await waitUntil(timeout: .seconds(120), every: .seconds(2)) { (await nodes.stored() ?? 0) > 0 }
            let flowing = try #require(await nodes.stored())
            try await waitUntil(timeout: .seconds(60), every: .seconds(1)) { (await nodes.stored() ?? 0) > flowing }
            let verify = try await sandbox.run(["verify", "--json"])
            let checks = (try? JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])?["checks"] as? [[String: Any]] ?? []
            let failed = checks.filter { $0["ok"] as? Bool != true }.compactMap { $0["name"] as? String }
            #expect(checks.count == 12 && failed.allSatisfy { $0 == "no critical alert firing" }, "\(failed): \(verify.stdout.suffix(2000))")
            #expect(try await sandbox.run(["down"]).code == 0)
        }
    }
}
