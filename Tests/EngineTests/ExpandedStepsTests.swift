import Testing
@testable import Engine

/// One answer for the step ids a graph has once its fan-outs expanded.
@Suite struct ExpandedStepsTests {
    let probe = Probe()

    @Test func fanOutsBecomeTheirPersistedChildrenAndDependenciesOnThemResolveToEachChild() throws {
        let graph = try StepGraph([
            .step(ScriptedStep(id: "cloud", probe: probe)),
            .fanOut(FanOut(id: "ready", source: "cloud", output: "nodes") { ScriptedStep(id: StepID("ready").child($0), dependencies: ["cloud"], probe: probe) }),
            .fanOut(FanOut(id: "later", source: "cloud", output: "other") { ScriptedStep(id: StepID("later").child($0), probe: probe) }),
            .step(ScriptedStep(id: "verify", dependencies: ["ready", "later"], probe: probe)),
        ])
        let expanded = graph.expanded { $0 == "ready" ? ["a", "b"] : nil }
        #expect(expanded.ids.map(\.rawValue) == ["cloud", "ready/a", "ready/b", "verify"])
        #expect(expanded.resolve(["ready", "later", "cloud"]).map(\.rawValue) == ["ready/a", "ready/b", "later", "cloud"])
        guard case .unexpanded(let fanOut) = expanded.entries[3] else { throw StepFailure("'later' should be unexpanded") }
        #expect(fanOut.id == "later")
    }
}
