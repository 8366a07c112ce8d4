import Foundation
import Synchronization
import Testing
@testable import Engine

/// A step whose plan keys a test sets; its check answers what `health` holds (nil: no check).
private struct KeyedStep: Step {
    let id: StepID
    var dependencies: [StepID] = []
    var keys: [String: String] = [:]
    var outputs: StepOutputs = [:]
    var health: Health?
    var everyRun = false
    let probe: Probe

    /// What a live check finds; shared with the test so it can "stop a unit".
    final class Health: Sendable {
        private let state = Mutex<(ok: Bool, outputs: StepOutputs)>((true, [:]))
        func set(ok: Bool, outputs: StepOutputs = [:]) { state.withLock { $0 = (ok, outputs) } }
        var value: (ok: Bool, outputs: StepOutputs) { state.withLock { $0 } }
    }

    var inputs: String { keys.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") }
    var planKeys: [String: String] { keys }
    var hasCheck: Bool { health != nil }
    var checksEveryRun: Bool { everyRun }

    func check(_ context: StepContext) async throws -> CheckResult {
        probe.check(id)
        guard let health else { return .unsatisfied("no check") }
        let (ok, found) = health.value
        return ok ? .satisfied(found.isEmpty ? outputs : found) : .unsatisfied("unit \(id) is stopped")
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        _ = probe.enter(id)
        probe.leave()
        return outputs
    }
}

/// `Executor.plan` (what `provision plan` shows) against `Executor.up` on the same store: the plan
/// names what changed and exactly the steps `up` then applies, and writes nothing.
@Suite struct PlanTests {
    static func plan(_ harness: Harness, _ nodes: [StepGraph.Node], refresh: Bool = false, secrets: [String] = []) async throws -> ChangePlan {
        let run = RunRecord(id: 0, command: .up, planPath: "test", planText: "", startedAt: Date(), finishedAt: nil, status: .running)
        let executor = Executor(graph: try StepGraph(nodes), store: harness.store, run: run, stateDirectory: harness.directory.url,
                                redactor: Redactor(secrets: secrets), processes: ProcessSupervisor())
        return try await executor.plan(refresh: refresh)
    }

    static func applied(_ summary: RunSummary) -> Set<StepID> {
        Set(summary.outcomes.compactMap { id, outcome in if case .applied = outcome { id } else { nil } })
    }

    /// network ← server ← worker fan-out (2) ← deploy; monitoring independent of the server.
    static func graph(_ probe: Probe, version: String, region: String = "eu-1", token: String = "hunter2") -> [StepGraph.Node] {
        [
            .step(KeyedStep(id: "network", keys: ["cluster.region": region], outputs: ["workers": .list([.string("w1"), .string("w2")])], probe: probe)),
            .step(KeyedStep(id: "server", dependencies: ["network"], keys: ["k3s.version": version, "k3s.token": token], probe: probe)),
            .fanOut(FanOut(id: "join", source: "network", output: "workers", dependencies: ["server"]) { item in
                KeyedStep(id: StepID("join").child(item), dependencies: ["network", "server"], keys: ["k3s.version": version], probe: probe)
            }),
            .step(KeyedStep(id: "deploy", dependencies: ["join"], keys: ["overlay": "aws"], probe: probe)),
            .step(KeyedStep(id: "monitoring", dependencies: ["network"], keys: ["monitoring": "on"], probe: probe)),
        ]
    }

    @Test func planAfterEditingOneKeyNamesItsOldAndNewValueAndExactlyTheStepsUpThenApplies() async throws {
        let harness = try Harness()
        let probe = Probe()
        _ = try await harness.run(Self.graph(probe, version: "v1.31.0"))

        let unchanged = try await Self.plan(harness, Self.graph(probe, version: "v1.31.0"))
        #expect(!unchanged.hasChanges)
        #expect(unchanged.ids(.unchanged) == ["network", "server", "monitoring", "join/w1", "join/w2", "deploy"])

        let plan = try await Self.plan(harness, Self.graph(probe, version: "v1.32.0"))
        #expect(plan.hasChanges)
        #expect(plan.ids(.run) == ["server", "join/w1", "join/w2", "deploy"])
        #expect(plan.ids(.unchanged) == ["network", "monitoring"])
        #expect(plan["server"]?.reasons == [.input(.planKey("k3s.version", old: "v1.31.0", new: "v1.32.0"))])
        #expect(plan["join/w1"]?.reasons == [.input(.planKey("k3s.version", old: "v1.31.0", new: "v1.32.0")), .dependencyRuns(["server"])])
        #expect(plan["deploy"]?.reasons == [.dependencyRuns(["join/w1", "join/w2"])])
        // The server first, then both workers together: the order a version change is handled in.
        #expect(plan.steps.filter { $0.action == .run }.map(\.wave) == [1, 2, 2, 3])

        let summary = try await harness.run(Self.graph(probe, version: "v1.32.0"))
        #expect(Self.applied(summary) == Set(plan.ids(.run)))
    }

    @Test func fanOutChildrenOfASourceThatRunsSayTheirItemsMayChange() async throws {
        let harness = try Harness()
        let probe = Probe()
        _ = try await harness.run(Self.graph(probe, version: "v1"))
        let plan = try await Self.plan(harness, Self.graph(probe, version: "v1", region: "eu-2"))
        #expect(plan["network"]?.reasons == [.input(.planKey("cluster.region", old: "eu-1", new: "eu-2"))])
        #expect(plan["join/w1"]?.reasons == [.dependencyRuns(["network", "server"]), .itemsMayChange("network")])
        #expect(plan.ids(.run) == ["network", "server", "monitoring", "join/w1", "join/w2", "deploy"])
    }

    @Test func planRedactsSecretValuesOfPlanKeys() async throws {
        let harness = try Harness()
        let probe = Probe()
        _ = try await harness.run(Self.graph(probe, version: "v1", token: "old-secret-value"))
        let plan = try await Self.plan(harness, Self.graph(probe, version: "v1", token: "new-secret-value"),
                                       secrets: ["old-secret-value", "new-secret-value"])
        #expect(plan["server"]?.reasons == [.input(.planKey("k3s.token", old: Redactor.placeholder, new: Redactor.placeholder))])
        #expect(!String(describing: plan).contains("secret-value"))
    }

    @Test func planWritesNothingAndTakesNoLock() async throws {
        let harness = try Harness()
        let probe = Probe()
        _ = try await harness.run(Self.graph(probe, version: "v1"))
        try harness.store.acquireLock(LockHolder(pid: 1, host: "elsewhere", since: Date(), command: "provision up", processStart: nil))
        let before = (try harness.store.steps(), try harness.store.events(run: nil, step: nil, limit: 10_000).count, try harness.store.lastRun())
        _ = try await Self.plan(harness, Self.graph(probe, version: "v2"), refresh: true)
        #expect(try harness.store.steps() == before.0)
        #expect(try harness.store.events(run: nil, step: nil, limit: 10_000).count == before.1)
        #expect(try harness.store.lastRun() == before.2)
        #expect(try harness.store.lockHolder()?.host == "elsewhere", "the lock another up holds is left as it was")
    }

    @Test func recordWithoutInputsByKeyIsPlannedToRunSayingSo() async throws {
        let harness = try Harness()
        let probe = Probe()
        let old = KeyedStep(id: "legacy", keys: ["pipeline.rate": "50"], probe: probe)
        let run = try harness.store.beginRun(command: .up, planPath: "test", planText: "")
        // As a store written before inputs were kept by key (schema 3) left it.
        try harness.store.markSucceeded("legacy", run: run.id, fingerprint: Executor.fingerprint(old, upstream: [:]), outputs: [:],
                                        duration: .zero, adopted: false)
        #expect(try harness.store.steps()["legacy"]?.inputs == nil)
        let same = try await Self.plan(harness, [.step(old)])
        #expect(same["legacy"]?.action == .unchanged, "an unchanged fingerprint needs no inputs by key")
        let changed = try await Self.plan(harness, [.step(KeyedStep(id: "legacy", keys: ["pipeline.rate": "60"], probe: probe))])
        #expect(changed["legacy"]?.action == .run)
        #expect(changed["legacy"]?.reasons == [.inputsNotRecorded])

        // One unchanged `up` fills them in, and the next change is named.
        let summary = try await harness.run([.step(old)])
        #expect(summary.outcomes["legacy"] == .unchanged([:]))
        #expect(try harness.store.steps()["legacy"]?.inputs?.planKeys == ["pipeline.rate": "50"])
        let named = try await Self.plan(harness, [.step(KeyedStep(id: "legacy", keys: ["pipeline.rate": "60"], probe: probe))])
        #expect(named["legacy"]?.reasons == [.input(.planKey("pipeline.rate", old: "50", new: "60"))])
    }

    @Test func aStoreFromBeforeInputsByKeyMigratesAndItsRecordsPlanAsInputsNotRecorded() async throws {
        let directory = TemporaryDirectory()
        let probe = Probe()
        let step = KeyedStep(id: "legacy", keys: ["pipeline.rate": "50"], probe: probe)
        do {
            // The store as schema 3 left it: no inputs column, one succeeded step.
            let database = try SQLiteDatabase(path: directory.url.appendingPathComponent(SQLiteRunStore.fileName).path)
            for migration in StoreSchema.migrations.prefix(3) { try database.execute(migration) }
            try database.execute("PRAGMA user_version = 3")
            _ = try database.query("INSERT INTO runs (command, plan_path, plan_text, started_at, status) VALUES ('up', 'p', '', 0, 'succeeded')")
            _ = try database.query("INSERT INTO steps (id, state, fingerprint, attempts, run_id, outputs) VALUES ('legacy', 'succeeded', ?, 1, 1, '{}')",
                                   [.text(Executor.fingerprint(step, upstream: [:]))])
        }
        let store = try SQLiteRunStore(directory: directory.url)
        let record = try #require(try store.steps()["legacy"])
        #expect(record.state == .succeeded && record.inputs == nil)
        let run = RunRecord(id: 0, command: .up, planPath: "p", planText: "", startedAt: Date(), finishedAt: nil, status: .running)
        func plan(_ step: KeyedStep) async throws -> ChangePlan {
            try await Executor(graph: try StepGraph([.step(step)]), store: store, run: run, stateDirectory: directory.url, redactor: Redactor(),
                               processes: ProcessSupervisor()).plan(refresh: false)
        }
        #expect(try await plan(step)["legacy"]?.action == .unchanged)
        #expect(try await plan(KeyedStep(id: "legacy", keys: ["pipeline.rate": "60"], probe: probe))["legacy"]?.reasons == [.inputsNotRecorded])
    }

    @Test func refreshNamesTheFailedCheckOfAStepUpChecksEveryRunAndUpRepairsExactlyThat() async throws {
        let harness = try Harness()
        let probe = Probe()
        let health = KeyedStep.Health()
        func nodes() -> [StepGraph.Node] {
            [
                .step(KeyedStep(id: "service.processor", keys: ["pipeline.batch_size": "500"], health: health, everyRun: true, probe: probe)),
                .step(KeyedStep(id: "service.producer", keys: ["pipeline.rate": "50"], health: KeyedStep.Health(), everyRun: true, probe: probe)),
                .step(KeyedStep(id: "verify", dependencies: ["service.processor", "service.producer"], probe: probe)),
            ]
        }
        _ = try await harness.run(nodes())
        health.set(ok: false)

        let stale = try await Self.plan(harness, nodes())
        #expect(!stale.hasChanges, "without --refresh the store says nothing changed")
        #expect(stale["service.processor"]?.action == .check && stale["service.processor"]?.reasons == [.checkedEveryRun])

        let live = try await Self.plan(harness, nodes(), refresh: true)
        #expect(live.hasChanges)
        #expect(live.ids(.run) == ["service.processor", "verify"])
        #expect(live["service.processor"]?.reasons == [.checkFailed("unit service.processor is stopped")])
        #expect(live["service.producer"]?.action == .unchanged && live["service.producer"]?.reasons == [.checkPassed])
        #expect(live["verify"]?.reasons == [.dependencyRuns(["service.processor"])])

        let summary = try await harness.run(nodes())
        #expect(Self.applied(summary) == Set(live.ids(.run)))
    }

    @Test func refreshNamesTheUpstreamOutputThatAnAdoptionChanges() async throws {
        let harness = try Harness()
        let probe = Probe()
        let health = KeyedStep.Health()
        func nodes() -> [StepGraph.Node] {
            [
                .step(KeyedStep(id: "endpoint", outputs: ["address": .string("127.0.1.1"), "port": .int(22)], health: health, probe: probe)),
                .step(KeyedStep(id: "client", dependencies: ["endpoint"], probe: probe)),
            ]
        }
        _ = try await harness.run(nodes())
        health.set(ok: true, outputs: ["address": .string("127.0.1.9"), "port": .int(22)])
        let plan = try await Self.plan(harness, nodes(), refresh: true)
        #expect(plan["endpoint"]?.action == .check && plan["endpoint"]?.reasons == [.checkPassedWithNewOutputs])
        #expect(plan["client"]?.action == .run)
        #expect(plan["client"]?.reasons == [.input(.upstream("endpoint", outputs: ["address"]))])
        let summary = try await harness.run(nodes(), recheck: true)
        #expect(Self.applied(summary) == ["client"])
    }

    @Test func newStepsAreCheckedFirstOrRunAndRemovedStepsAreListed() async throws {
        let harness = try Harness()
        let probe = Probe()
        _ = try await harness.run([.step(KeyedStep(id: "old", probe: probe)), .step(KeyedStep(id: "kept", probe: probe))])
        let plan = try await Self.plan(harness, [
            .step(KeyedStep(id: "kept", probe: probe)),
            .step(KeyedStep(id: "checked", health: KeyedStep.Health(), probe: probe)),
            .step(KeyedStep(id: "unchecked", probe: probe)),
        ])
        #expect(plan["checked"]?.action == .check && plan["checked"]?.reasons == [.new])
        #expect(plan["unchecked"]?.action == .run && plan["unchecked"]?.reasons == [.new, .noCheck])
        #expect(plan["old"]?.action == .removed && plan["old"]?.changes == false)
        #expect(plan.steps.map(\.id) == ["kept", "checked", "unchecked", "old"])
    }
}
