import Foundation
import Testing
@testable import Engine

/// `down --keep-infra` (a run whose command is `downKeepingInfra`): infrastructure steps stay.
@Suite struct KeepInfraTests {
    let probe = Probe()

    /// machines (infrastructure) ─► software ─► app
    func graph() -> [StepGraph.Node] {
        [
            .step(ScriptedStep(id: "machines", outputs: ["ip": .string("10.0.0.1")], infrastructure: true, probe: probe)),
            .step(ScriptedStep(id: "software", dependencies: ["machines"], probe: probe)),
            .step(ScriptedStep(id: "app", dependencies: ["software"], probe: probe)),
        ]
    }

    @Test func keepInfraTearsDownOnlyWhatRunsOnTheMachinesAndAKeptStepIsUnchangedForTheNextUp() async throws {
        let harness = try Harness()
        _ = try await harness.run(graph())
        let before = try #require(try harness.store.steps()["machines"])

        let events = EventLog()
        let down = try await harness.run(graph(), command: .downKeepingInfra, events: { events.append($0) })
        #expect(down.status == .succeeded)
        #expect(down.outcomes["machines"] == .kept)
        #expect(down.outcomes["software"] == .applied([:]) && down.outcomes["app"] == .applied([:]))
        #expect(probe.order.suffix(2) == ["down:app", "down:software"], "dependents first, the machines' teardown never runs")
        #expect(probe.applied("down:machines") == 0)
        #expect(probe.keepsInfrastructure("software") == true && probe.keepsInfrastructure("app") == true)
        let records = try harness.store.steps()
        #expect(records["machines"] == before, "a kept step's record is untouched")
        #expect(records["software"]?.state == .destroyed && records["app"]?.state == .destroyed)
        #expect(events.all.filter { $0.step == "machines" }.map(\.kind) == [.stepKept])
        #expect(try harness.store.lastRun()?.command == .downKeepingInfra)

        // A second keep-infra down has nothing left to tear down.
        let again = try await harness.run(graph(), command: .downKeepingInfra)
        #expect(again.outcomes["software"] == .unchanged([:]) && again.outcomes["machines"] == .kept)
        #expect(probe.applied("down:software") == 1)

        // up: the machines are unchanged (not applied again), what ran on them is applied again.
        let up = try await harness.run(graph())
        #expect(up.outcomes["machines"] == .unchanged(["ip": .string("10.0.0.1")]))
        #expect(probe.applied("machines") == 1 && probe.applied("software") == 2 && probe.applied("app") == 2)

        // A plain down tears the machines down too, and tells no teardown that they stay.
        let plain = try await harness.run(graph(), command: .down)
        #expect(plain.outcomes["machines"] == .applied([:]))
        #expect(probe.applied("down:machines") == 1)
        #expect(probe.keepsInfrastructure("software") == false && probe.keepsInfrastructure("machines") == false)
        #expect(try harness.store.steps()["machines"]?.state == .destroyed)
    }

    @Test func resumingAFailedKeepInfraDownStillKeepsTheMachines() async throws {
        let harness = try Harness()
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "machines", infrastructure: true, probe: probe)),
            .step(ScriptedStep(id: "software", dependencies: ["machines"], teardownFailures: 1, probe: probe)),
        ]
        _ = try await harness.run(nodes)
        let failed = try await harness.run(nodes, command: .downKeepingInfra)
        #expect(failed.failures.map(\.0) == ["software"])
        #expect(failed.outcomes["machines"] == .skipped("not run: upstream 'software' did not succeed"))

        // resume continues the run as recorded: still keeping the machines.
        let run = try #require(try harness.store.lastRun())
        let resumed = try await harness.run(nodes, command: run.command, resuming: run)
        #expect(resumed.outcomes["software"] == .applied([:]) && resumed.outcomes["machines"] == .kept)
        #expect(probe.applied("down:machines") == 0 && probe.keepsInfrastructure("software") == true)
        #expect(try harness.store.steps()["machines"]?.state == .succeeded)
    }
}
