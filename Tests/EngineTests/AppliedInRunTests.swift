import Foundation
import Testing
@testable import Engine

/// A step whose dependency was applied in this run is applied, never adopted, whenever the run
/// was killed: the same decisions as a run that was never interrupted.
struct AppliedInRunTests {
    let probe = Probe()

    /// The plan after an edit: `base` changed its inputs; `interrupted` (whose check passes) and
    /// `done` (succeeded in the run before the edit) depend on it.
    func graph(base inputs: String) -> [StepGraph.Node] {
        [
            .step(ScriptedStep(id: "base", inputs: inputs, probe: probe)),
            .step(ScriptedStep(id: "interrupted", dependencies: ["base"], satisfied: true, checkable: true, probe: probe)),
            .step(ScriptedStep(id: "done", dependencies: ["base"], satisfied: true, checkable: true, probe: probe)),
        ]
    }

    @Test func afterAPlanEditAStepDownstreamOfOneReappliedBeforeTheKillIsAppliedNotAdopted() async throws {
        let harness = try Harness()
        let first = try await harness.run(graph(base: "v1"))
        #expect(first.outcomes["interrupted"] == .applied([:]), "new, but downstream of a step applied in the same run")

        // The edited plan's run is SIGKILLed after `base` was applied again and while
        // `interrupted` was being applied (its attempt recorded, not finished); `done` not reached.
        let edited = graph(base: "v2")
        let killed = try harness.store.beginRun(command: .up, planPath: "test", planText: "")
        let base = ScriptedStep(id: "base", inputs: "v2", probe: probe)
        try harness.store.markRunning("base", run: killed.id, attempt: 1, fingerprint: Executor.fingerprint(base, upstream: [:]))
        try harness.store.markSucceeded("base", run: killed.id, fingerprint: Executor.fingerprint(base, upstream: [:]), outputs: [:],
                                        duration: .zero, adopted: false)
        let interrupted = ScriptedStep(id: "interrupted", dependencies: ["base"], probe: probe)
        try harness.store.markRunning("interrupted", run: killed.id, attempt: 1,
                                      fingerprint: Executor.fingerprint(interrupted, upstream: ["base": [:]]))

        let resumed = try await harness.run(edited, resuming: killed)
        #expect(resumed.outcomes["base"] == .unchanged([:]))
        #expect(resumed.outcomes["interrupted"] == .applied([:]), "its check passing must not adopt it: base changed under it")
        #expect(resumed.outcomes["done"] == .applied([:]), "an uninterrupted run would have applied it after base")
        #expect(probe.applied("interrupted") == 2 && probe.applied("done") == 2)
        #expect(probe.checked("interrupted") == 0, "never checked: a passing check could only adopt it")
    }

    @Test func aStepThatAlreadySucceededInThisRunIsNotAppliedAgainOnResume() async throws {
        let harness = try Harness()
        _ = try await harness.run(graph(base: "v1"))
        // Killed after `base` and `done` succeeded in the edited plan's run.
        let killed = try harness.store.beginRun(command: .up, planPath: "test", planText: "")
        let base = ScriptedStep(id: "base", inputs: "v2", probe: probe)
        let done = ScriptedStep(id: "done", dependencies: ["base"], probe: probe)
        try harness.store.markRunning("base", run: killed.id, attempt: 1, fingerprint: Executor.fingerprint(base, upstream: [:]))
        try harness.store.markSucceeded("base", run: killed.id, fingerprint: Executor.fingerprint(base, upstream: [:]), outputs: [:],
                                        duration: .zero, adopted: false)
        try harness.store.markRunning("done", run: killed.id, attempt: 1, fingerprint: Executor.fingerprint(done, upstream: ["base": [:]]))
        try harness.store.markSucceeded("done", run: killed.id, fingerprint: Executor.fingerprint(done, upstream: ["base": [:]]),
                                        outputs: [:], duration: .zero, adopted: false)

        let resumed = try await harness.run(graph(base: "v2"), resuming: killed)
        #expect(resumed.outcomes["done"] == .unchanged([:]))
        #expect(resumed.outcomes["interrupted"] == .applied([:]))
    }
}
