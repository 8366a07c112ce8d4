import Testing
@testable import Engine

@Suite struct StepGraphTests {
    let probe = Probe()

    func step(_ id: StepID, _ deps: [StepID] = []) -> StepGraph.Node {
        .step(ScriptedStep(id: id, dependencies: deps, probe: probe))
    }

    @Test func orderPutsDependenciesFirstAndKeepsDeclarationOrderForTies() throws {
        let graph = try StepGraph([step("c", ["b"]), step("a"), step("b", ["a"]), step("d")])
        #expect(graph.order == ["a", "d", "b", "c"])
    }

    @Test func cycleIsReportedWithTheStepsInOrder() {
        #expect(throws: GraphError.cycle(["a", "c", "b", "a"])) {
            try StepGraph([step("a", ["c"]), step("b", ["a"]), step("c", ["b"]), step("d")])
        }
    }

    @Test func missingDependencyNamesTheStepAndSuggestsTheClosestId() {
        #expect(throws: GraphError.missingDependency(step: "join", dependency: "k3s.instal", suggestion: "k3s.install")) {
            try StepGraph([step("k3s.install"), step("join", ["k3s.instal"])])
        }
    }

    @Test func duplicateIdIsRejected() {
        #expect(throws: GraphError.duplicate("a")) { try StepGraph([step("a"), step("a")]) }
    }

    @Test func dependencyOnAFanOutIsAllowed() throws {
        let fanOut = FanOut(id: "node", source: "list", output: "lines") { item in ScriptedStep(id: StepID("node").child(item), probe: probe) }
        let graph = try StepGraph([step("list"), .fanOut(fanOut), step("after", ["node"])])
        #expect(graph.order == ["list", "node", "after"])
    }
}
