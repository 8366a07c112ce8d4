@testable import App
import Engine
import Foundation
@testable import PlanLanguage
import Testing

@Suite struct PlanLoaderTests {
    func parse(_ text: String) throws -> Plan {
        try PlanLoader.parse(Data(text.utf8), path: "plans/t.yaml")
    }

    func error(_ text: String) -> PlanError? { planError(text) }

    @Test func demoPlanLoadsWithEveryFeature() throws {
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/demo.yaml").path)
        #expect(plan.name == "demo")
        #expect(plan.parallelism == 4)
        #expect(plan.secrets["demo_token"] == .environment("DEMO_TOKEN"))
        let prepare = try #require(plan.steps.first { $0.id == "node.prepare" })
        #expect(prepare.forEach == .init(step: "inventory", output: "lines"))
        let configure = try #require(plan.steps.first { $0.id == "configure" })
        #expect(configure.retry == RetryPolicy(attempts: 3, backoff: .milliseconds(200), timeout: .seconds(30)))
        #expect(configure.exec.secrets == ["demo_token"])
    }

    @Test func unknownKeyPointsAtItsLineAndColumnWithASuggestion() throws {
        let e = try #require(error("name: p\nsteps:\n  - id: a\n    exec:\n      run: true\n      chek: test -f x\n"))
        #expect(e.line == 6)
        #expect(e.column == 7)
        #expect(e.message == "unknown key 'chek' in exec")
        #expect(e.hint?.hasPrefix("did you mean 'check'?") == true)
        #expect(e.description.hasPrefix("plans/t.yaml:6:7: error:"))
    }

    @Test func wrongTypeSaysWhatWasFoundAndWhatIsExpected() throws {
        let e = try #require(error("name: p\nsteps:\n  - id: a\n    retry: {attempts: many}\n    exec: {run: 'true'}\n"))
        #expect(e.line == 4)
        #expect(e.message == "retry.attempts must be a whole number, found 'many'")
    }

    @Test func cycleNamesTheStepsAndTheLine() throws {
        let e = try #require(error("name: p\nsteps:\n  - id: a\n    needs: [b]\n    exec: {run: 'true'}\n  - id: b\n    needs: [a]\n    exec: {run: 'true'}\n"))
        #expect(e.message.contains("a → b → a"))
        #expect(e.line == 3)
    }

    @Test func durationsAcceptTheUsualUnits() {
        #expect(PlanReader.parseDuration("500ms") == .milliseconds(500))
        #expect(PlanReader.parseDuration("1m30s") == .seconds(90))
        #expect(PlanReader.parseDuration("2h") == .seconds(7200))
        #expect(PlanReader.parseDuration("1.5") == .milliseconds(1500))
        #expect(PlanReader.parseDuration("ten") == nil)
        #expect(PlanReader.parseDuration("5x") == nil)
    }

    @Test func missingSecretVariableIsAClearErrorAndNoValueIsInventedForIt() throws {
        let plan = try parse("name: p\nsecrets: {tok: {env: NOT_SET_ANYWHERE_42}}\nsteps:\n  - id: a\n    exec: {run: 'true', secrets: [tok]}\n")
        #expect(throws: PlanError.self) { try plan.resolveSecrets(environment: [:]) }
        #expect(try plan.resolveSecrets(environment: ["NOT_SET_ANYWHERE_42": "v4lue"]) == ["tok": "v4lue"])
    }

    @Test func fanOutChildrenGetItemIdsAndTheItemInTheirCommand() throws {
        let plan = try parse("name: p\nsteps:\n  - id: list\n    exec: {run: 'echo a'}\n  - id: each\n    for_each: {step: list}\n    exec: {run: 'echo {{item}}'}\n")
        let graph = try plan.graph(secrets: [:])
        guard case .fanOut(let fanOut) = graph.nodes["each"] else { Issue.record("each is not a fan-out"); return }
        let child = fanOut.make("w1")
        #expect(child.id == "each/w1")
        #expect(child.dependencies == ["list"])
        #expect(child.inputs.contains("w1"))
    }
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
