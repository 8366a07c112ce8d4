import Foundation
import Testing
@testable import Engine
@testable import Steps

#if canImport(Glibc)
import Glibc
#endif

/// Faults in a running sandbox pipeline, as an operator's bad day brings them: the broker killed or
/// its topics deleted, a service supervisor killed and then its orphan, and a random mix of kills
/// followed by plain `up`. The flow must heal or be healed by `up`, and every event a producer saw
/// acknowledged must end stored exactly once.
@Suite(.serialized) struct SandboxSelfHealingTests {
    typealias Nodes = SandboxPipelineTests.Nodes

    /// A sandbox with the durable broker (Tansu on moto's S3), at 10 events/s per producer: under a
    /// full test run's load, 30/s once outran what the broker on a starved moto could pass on
    /// (verify saw end-to-end latencies at the histogram's 60 s top for ten minutes).
    static func sandbox(_ prefix: String) -> Sandbox {
        Sandbox(name: "\(prefix)-\(UInt16.random(in: 1000...65000))", workers: 2, pipeline: SandboxPipelineTests.pipeline(rate: 10), durableBroker: true)
    }

    /// The first `up` of a test, before its fault. When only `verify` failed (everything else
    /// converged: a full test run's load once kept a fresh sandbox from verifying in its windows),
    /// verify's log is printed, for the record, and `up` runs once more; the tests judge what follows.
    static func firstUp(_ sandbox: Sandbox) async throws -> CLI.Result {
        var up = try await sandbox.run(["up"])
        // At a full run's start the durable broker (Tansu on a starved moto's S3) can pass records
        // on minutes late (verify saw latencies at the histogram's 60 s top): up to three more ups,
        // a minute apart, while the load of the run's start passes.
        for _ in 0..<3 where up.code != 0 && up.stderr.contains("✗ verify") && !up.stderr.contains("✗ service.") && !up.stderr.contains("✗ terraform") {
            let log = try await sandbox.run(["logs", "verify"]).stdout
            print("\(sandbox.name): the first up failed only at verify; its log:\n\(log.suffix(3000))\nup again in a minute")
            try await Task.sleep(for: .seconds(60))
            up = try await sandbox.run(["up"])
        }
        return up
    }

    /// The program a unit's supervisor runs on `node`, by the supervisor's own record.
    static func child(_ unit: String, on node: ClusterInventory.Node, _ nodes: Nodes) async throws -> String {
        try await nodes.run("cat /run/openrc/options/\(unit)/child_pid 2>/dev/null", on: node).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every process on `node` running `program`, with its parent's command name (`pid ppid parent`).
    static func processes(of program: String, on node: ClusterInventory.Node, _ nodes: Nodes) async throws -> [String] {
        try await nodes.run("""
            for p in $(pgrep -f '^\(program)( |$)'); do echo "$p $(ps -o ppid= -p $p | tr -d ' ') $(ps -o comm= -p $(ps -o ppid= -p $p))"; done
            """, on: node).stdout.split(separator: "\n").map(String.init)
    }

    /// Stops every producer unit (SIGTERM: each flushes and writes its final counts) and waits
    /// until the processor has stored everything the broker holds. Returns when the stored count
    /// was last seen rising (sampled every 3 s).
    @discardableResult
    static func drain(_ nodes: Nodes) async throws -> ContinuousClock.Instant {
        for worker in nodes.inventory.workers { _ = try await nodes.run("rc-service pipeline-producer stop", on: worker) }
        // The backlog of a broker outage, read through moto's S3 while the whole suite runs: minutes.
        // The lag gauge can stay above 0 after topics were re-created (offsets committed for the old
        // incarnation), so it is waited for (up to 180 s), not required: the stored count standing
        // still is, and the ledger's checks judge what was stored.
        let start = ContinuousClock.now
        var last = -1
        var rose = start
        var lagDone = false
        while true {
            if !lagDone { lagDone = await nodes.lag() == 0 || ContinuousClock.now - start > .seconds(180) }
            let now = await nodes.stored() ?? -2
            if now != last {
                if now > last { rose = .now }
                last = now
            } else if lagDone {
                return rose
            }
            guard ContinuousClock.now - start < .seconds(300) else { throw StepFailure("the stored count still changed after 300 s (last \(last))") }
            try await Task.sleep(for: .seconds(3))
        }
    }

    @Test func aKilledBrokerComesBackWithItsDataAndTheFlowResumesWithoutUpLosingNoAcknowledgedEvent() async throws {
        let sandbox = Self.sandbox("heal-broker")
        defer { sandbox.cleanUp() }
        let up = try await Self.firstUp(sandbox)
        #expect(up.code == 0, "\(up.stderr.suffix(3000))")
        let nodes = try Nodes(sandbox)
        defer { Task { await nodes.pool.closeAll() } }
        let runs = try sandbox.store().lastRun()?.id

        let broker = try await Self.child("pipeline-broker", on: nodes.control, nodes)
        let killed = ContinuousClock.now
        _ = try await nodes.run("kill -9 \(broker)", on: nodes.control)
        // The supervisor starts it again; its topics, records and the processor's offsets are in
        // the object store, so the same topics come back and documents rise again.
        try await SandboxPipelineTests.poll(timeout: .seconds(30), every: .milliseconds(500)) {
            let now = try await Self.child("pipeline-broker", on: nodes.control, nodes)
            return !now.isEmpty && now != broker
        }
        let restarted = try #require(await nodes.stored())
        try await SandboxPipelineTests.poll(timeout: .seconds(60), every: .seconds(1)) { (await nodes.stored() ?? 0) > restarted + 30 }
        #expect(ContinuousClock.now - killed < .seconds(60), "documents rise again within a minute of the kill")
        // Every check but latency passes with no step run (events produced while the broker was
        // down arrive late: they are what the latency percentiles of the last minutes show). Asked
        // up to three times: under a full test run a topic's flow can pause for one 5 s window
        // while the restarted broker catches up.
        var verify = try await sandbox.run(["verify", "--json"])
        var checks: [[String: Any]] = []
        var failed: [String] = []
        for attempt in 1...3 {
            if attempt > 1 { try await Task.sleep(for: .seconds(5)); verify = try await sandbox.run(["verify", "--json"]) }
            checks = (try? JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])?["checks"] as? [[String: Any]] ?? []
            failed = checks.filter { $0["ok"] as? Bool != true }.compactMap { $0["name"] as? String }
            if checks.count == 12 && failed.allSatisfy({ $0.hasPrefix("end-to-end latency") }) { break }
        }
        #expect(checks.count == 12 && failed.allSatisfy { $0.hasPrefix("end-to-end latency") }, "\(failed): \(verify.stdout.suffix(3000))")
        #expect(try sandbox.store().lastRun()?.id == runs, "no run was started")

        let settled = try await Self.drain(nodes)
        // Two minutes on a quiet machine (measured: 1m20s); the whole suite runs sandboxes in parallel.
        #expect(settled - killed < .seconds(300), "everything stored within minutes of the kill (the stored count last rose \(settled - killed) after it)")
        let ledger = try await FlowLedger.read(nodes, cli: sandbox.cli, broker: true)
        #expect(ledger.acknowledged > 0 && ledger.runs.count >= 2, "\(ledger.runs)")
        #expect(ledger.exactlyOnceProblems.isEmpty, "\(ledger.exactlyOnceProblems)")
        #expect(try await sandbox.run(["down"]).code == 0)
    }

    @Test func topicsDeletedAreCreatedAgainByUpAndTheirNewRecordsAreAllStoredAndAWrongPartitionCountIsNamed() async throws {
        let sandbox = Self.sandbox("heal-topics")
        defer { sandbox.cleanUp() }
        let up = try await Self.firstUp(sandbox)
        #expect(up.code == 0, "\(up.stderr.suffix(3000))")
        let nodes = try Nodes(sandbox)
        defer { Task { await nodes.pool.closeAll() } }
        let broker = "--broker tcp://\(nodes.address):9092"
        try await SandboxPipelineTests.poll(timeout: .seconds(60), every: .seconds(1)) { (await nodes.stored() ?? 0) > 300 }

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
        #expect(repaired.code == 0, "\(repaired.stdout.suffix(3000))\(repaired.stderr.suffix(3000))")
        #expect(SandboxPipelineTests.applied(repaired).isSuperset(of: ["service.broker", "verify"]), "\(SandboxPipelineTests.stepOutcomes(repaired))")
        let list = try await nodes.run("/usr/local/bin/tansu topic list \(broker)", on: nodes.control).stdout
        let topics = (try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]] ?? [])
            .reduce(into: [String: Int]()) { $0[$1["name"] as? String ?? ""] = ($1["partitions"] as? [Any])?.count }
        for topic in PipelineSpec.topics { #expect(topics[topic] == 3, "\(topic): \(list)") }

        // Records of the new incarnation are stored, every event of it, none taken for a
        // duplicate of the old one's; the old documents stay. (Judged by the events themselves:
        // a record of the old incarnation consumed after another partition showed the new one is
        // stamped with the new topic id, docs/self-healing.md.)
        try await Self.drain(nodes)
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
        let sandbox = Self.sandbox("heal-super")
        defer { sandbox.cleanUp() }
        let up = try await Self.firstUp(sandbox)
        #expect(up.code == 0, "\(up.stderr.suffix(3000))")
        let nodes = try Nodes(sandbox)
        defer { Task { await nodes.pool.closeAll() } }
        let program = "/opt/provision/bin/processor"

        for killOrphanToo in [false, true] {
            let orphan = try await Self.child("pipeline-processor", on: nodes.control, nodes)
            _ = try await nodes.run("kill -9 $(cat /run/supervise-pipeline-processor.pid)", on: nodes.control)
            if killOrphanToo { _ = try await nodes.run("kill -9 \(orphan)", on: nodes.control) }
            let audit = try await sandbox.run(["status", "--audit"])
            #expect(audit.code == 6, "\(audit.stdout)")
            #expect(audit.stdout.split(separator: "\n").contains { $0.hasPrefix("service.processor ") && $0.contains("not running") }, "\(audit.stdout)")

            let repaired = try await sandbox.run(["up", "--json"])
            #expect(repaired.code == 0, "orphan killed too: \(killOrphanToo): \(repaired.stderr.suffix(3000))")
            #expect(SandboxPipelineTests.applied(repaired).contains("service.processor"), "\(SandboxPipelineTests.stepOutcomes(repaired))")
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

    /// The alerts of Prometheus on the control plane: name → state (pending, firing).
    static func alerts(_ nodes: Nodes) async -> [String: String] {
        guard let (_, body) = await Nodes.get("http://\(nodes.address):9090/api/v1/alerts"),
              let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let list = (object["data"] as? [String: Any])?["alerts"] as? [[String: Any]] else { return [:] }
        return list.reduce(into: [:]) { result, alert in
            if let name = (alert["labels"] as? [String: Any])?["alertname"] as? String { result[name] = alert["state"] as? String }
        }
    }

    @Test func aStoppedDatabaseFiresPipelineFlowStoppedInTheSandboxsPrometheusAndUpRepairsTheFlow() async throws {
        let sandbox = Self.sandbox("heal-alert")
        defer { sandbox.cleanUp() }
        let up = try await Self.firstUp(sandbox)
        #expect(up.code == 0, "\(up.stderr.suffix(3000))")
        let nodes = try Nodes(sandbox)
        defer { Task { await nodes.pool.closeAll() } }
        #expect(await Self.alerts(nodes)["PipelineFlowStopped"] == nil)

        // Producers keep producing, the processor cannot store: records wait, nothing is stored.
        _ = try await nodes.run("rc-service pipeline-mongodb stop", on: nodes.control)
        let stopped = ContinuousClock.now
        try await SandboxPipelineTests.poll(timeout: .seconds(360), every: .seconds(5)) {
            await Self.alerts(nodes)["PipelineFlowStopped"] == "firing"
        }
        print("PipelineFlowStopped fired \(ContinuousClock.now - stopped) after the database stopped")

        // `up` restarts the database; its verify may still see the outage's alerts firing (they
        // resolve on their own windows), so the flow is judged by verify's other checks.
        let repaired = try await sandbox.run(["up", "--json"])
        let outcomes = SandboxPipelineTests.stepOutcomes(repaired)
        #expect(outcomes["service.mongodb"] == "applied", "\(outcomes)")
        try await SandboxPipelineTests.poll(timeout: .seconds(300), every: .seconds(5)) {
            await Self.alerts(nodes)["PipelineFlowStopped"] == nil
        }
        try await SandboxPipelineTests.poll(timeout: .seconds(120), every: .seconds(2)) { (await nodes.stored() ?? 0) > 0 }
        let flowing = try #require(await nodes.stored())
        try await SandboxPipelineTests.poll(timeout: .seconds(60), every: .seconds(1)) { (await nodes.stored() ?? 0) > flowing }
        let verify = try await sandbox.run(["verify", "--json"])
        let checks = (try? JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])?["checks"] as? [[String: Any]] ?? []
        let failed = checks.filter { $0["ok"] as? Bool != true }.compactMap { $0["name"] as? String }
        #expect(checks.count == 12 && failed.allSatisfy { $0 == "no alert firing" }, "\(failed): \(verify.stdout.suffix(2000))")
        #expect(try await sandbox.run(["down"]).code == 0)
    }

    /// A bounded steady-state chaos trial: each round SIGKILLs one of broker, database, processor,
    /// a producer, a supervisor, or the sshd processes serving a node's connections (the listener
    /// is the node's PID 1 here; on EC2 systemd restarts sshd), then runs plain `up`. The seed is
    /// printed; `CHAOS_SEED=N` replays a failure.
    @Test func tenRandomKillsEachFollowedByUpEndVerifiedWithEveryAcknowledgedEventStoredOnce() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["CHAOS_SEED"] ?? "") ?? UInt64.random(in: 1...999_999)
        print("chaos trial seed \(seed) (replay: CHAOS_SEED=\(seed) swift test --filter tenRandomKills)")
        var random = SeededGenerator(seed: seed)
        let sandbox = Self.sandbox("chaos")
        defer { sandbox.cleanUp() }
        let up = try await Self.firstUp(sandbox)
        #expect(up.code == 0, "\(up.stderr.suffix(3000))")
        var nodes = try Nodes(sandbox)
        let started = ContinuousClock.now
        let units = ["pipeline-broker", "pipeline-mongodb", "pipeline-processor", "pipeline-producer"]
        var rounds: [String] = []
        for round in 1...10 {
            let worker = nodes.inventory.workers[Int(random.next() % UInt64(nodes.inventory.workers.count))]
            let fault: String, node: ClusterInventory.Node, command: String
            switch random.next() % 6 {
            case 0: (fault, node, command) = ("broker", nodes.control, "kill -9 $(cat /run/openrc/options/pipeline-broker/child_pid)")
            case 1: (fault, node, command) = ("database", nodes.control, "kill -9 $(cat /run/openrc/options/pipeline-mongodb/child_pid)")
            case 2: (fault, node, command) = ("processor", nodes.control, "kill -9 $(cat /run/openrc/options/pipeline-processor/child_pid)")
            case 3: (fault, node, command) = ("producer on \(worker.name)", worker, "kill -9 $(cat /run/openrc/options/pipeline-producer/child_pid)")
            case 4:
                let unit = units[Int(random.next() % UInt64(units.count))]
                node = unit == "pipeline-producer" ? worker : nodes.control
                (fault, command) = ("supervisor of \(unit) on \(node.name)", "kill -9 $(cat /run/supervise-\(unit).pid)")
            default:
                node = random.next() % 2 == 0 ? nodes.control : worker
                (fault, command) = ("sshd sessions on \(node.name)", "pkill -9 -P 1 -x sshd")
            }
            _ = try? await nodes.run(command, on: node)
            if fault.hasPrefix("sshd") {
                // Its own session was among those killed: connect afresh.
                await nodes.pool.closeAll()
                nodes = try Nodes(sandbox)
            }
            let repaired = try await sandbox.run(["up"])
            rounds.append("round \(round): \(fault) → up exit \(repaired.code)")
            #expect(repaired.code == 0, "seed \(seed), round \(round) (\(fault)): \(repaired.stderr.suffix(2000))")
        }
        print("chaos trial seed \(seed): \(rounds.joined(separator: "; ")) in \(ContinuousClock.now - started)")
        #expect(ContinuousClock.now - started < .seconds(300), "ten rounds within five minutes")
        // The last kill may have just happened: the flow first, then the whole table.
        let now = try #require(await nodes.stored())
        try await SandboxPipelineTests.poll(timeout: .seconds(90), every: .seconds(1)) { (await nodes.stored() ?? 0) > now + 50 }
        let verify = try await sandbox.run(["verify", "--json"])
        #expect(verify.code == 0, "seed \(seed): \(verify.stdout.suffix(3000))")
        try await Self.drain(nodes)
        let ledger = try await FlowLedger.read(nodes, cli: sandbox.cli, broker: true)
        #expect(ledger.acknowledged > 0)
        #expect(ledger.exactlyOnceProblems.isEmpty, "seed \(seed): \(ledger.exactlyOnceProblems)")
        await nodes.pool.closeAll()
        #expect(try await sandbox.run(["down"]).code == 0)
    }
}

/// xorshift64*: a small seeded generator, so a chaos trial's faults replay from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}
