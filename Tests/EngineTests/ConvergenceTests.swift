import Foundation
import Testing
@testable import Engine

/// Which steps `up` runs again: scoped upstream outputs, `--recheck`, stable fingerprints, and
/// what a teardown sees.
struct ConvergenceTests {
    let probe = Probe()

    /// A fan-out child that depends only on its own node's entry of a node map.
    struct NodeStep: Step {
        let id: StepID
        let node: String
        let probe: Probe
        var dependencies: [StepID] { ["cloud"] }
        var inputs: String { "node \(node)" }

        func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
            guard case .map(let nodes)? = upstream["cloud"]?["nodes"] else { return [:] }
            return ["cloud": ["node": nodes[node] ?? .string("")]]
        }

        func apply(_ context: StepContext) async throws -> StepOutputs {
            _ = probe.enter(id)
            probe.leave()
            return [:]
        }
    }

    func graph(_ names: [String], inputs: String) -> [StepGraph.Node] {
        let nodes = OutputValue.map(Dictionary(uniqueKeysWithValues: names.map { ($0, OutputValue.map(["ip": .string("10.0.0.\($0.count)")])) }))
        let probe = probe
        return [
            .step(ScriptedStep(id: "cloud", inputs: inputs, outputs: ["names": .list(names.map(OutputValue.string)), "nodes": nodes], probe: probe)),
            .fanOut(FanOut(id: "ready", source: "cloud", output: "names") { NodeStep(id: StepID("ready").child($0), node: $0, probe: probe) }),
        ]
    }

    @Test func addingANodeRunsOnlyTheNewNodesStepWhenStepsScopeTheirUpstream() async throws {
        let harness = try Harness()
        _ = try await harness.run(graph(["cp", "w1"], inputs: "workers=1"))
        let second = try await harness.run(graph(["cp", "w1", "w22"], inputs: "workers=2"))
        #expect(probe.applied("cloud") == 2)
        #expect(probe.applied("ready/cp") == 1 && probe.applied("ready/w1") == 1)
        #expect(probe.applied("ready/w22") == 1)
        #expect(second.outcomes["ready/cp"] == .unchanged([:]))
    }

    @Test func recheckAppliesAgainOnlyTheStepsWhoseCheckNoLongerHolds() async throws {
        let harness = try Harness()
        let healthy = ScriptedStep(id: "healthy", satisfied: true, checkable: true, probe: probe)
        let drifted = ScriptedStep(id: "drifted", satisfied: false, checkable: true, probe: probe)
        _ = try await harness.run([.step(healthy), .step(drifted)])
        #expect(probe.applied("healthy") == 0 && probe.applied("drifted") == 1, "a new step whose check holds is adopted")

        let trusted = try await harness.run([.step(healthy), .step(drifted)])
        #expect(trusted.outcomes["drifted"] == .unchanged([:]) && probe.checked("drifted") == 1, "without --recheck the store is trusted")

        let rechecked = try await harness.run([.step(healthy), .step(drifted)], recheck: true)
        #expect(rechecked.outcomes["healthy"] == .unchanged([:]))
        #expect(probe.applied("drifted") == 2)
        #expect(probe.checked("healthy") == 2 && probe.checked("drifted") == 2)
    }

    @Test func recheckAdoptsLiveOutputsThatDifferWithoutApplying() async throws {
        let harness = try Harness()
        _ = try await harness.run([.step(ScriptedStep(id: "vm", outputs: ["ip": .string("10.0.0.5")], probe: probe))])
        // The same step now checks satisfied but reports another address (an exec step's check
        // prints something else than its run, say).
        let moved = ScriptedStep(id: "vm", satisfied: true, outputs: ["ip": .string("10.0.0.9")], checkable: true, probe: probe)
        let summary = try await harness.run([.step(moved)], recheck: true)
        #expect(summary.outcomes["vm"] == .adopted(["ip": .string("10.0.0.9")]))
        #expect(probe.applied("vm") == 1, "a satisfied step is not applied again")
        #expect(try harness.store.steps()["vm"]?.outputs["ip"] == .string("10.0.0.9"))
    }

    @Test func fingerprintOfMapOutputsDoesNotDependOnKeyOrder() {
        var ascending: [String: OutputValue] = [:]
        for i in 0..<64 { ascending["key-\(i)"] = .int(i) }
        var descending: [String: OutputValue] = [:]
        descending.reserveCapacity(4096)
        for i in (0..<64).reversed() { descending["key-\(i)"] = .int(i) }
        let step = ScriptedStep(id: "s", probe: probe)
        let a = Executor.fingerprint(step, upstream: ["up": ["nodes": .map(ascending)]])
        let b = Executor.fingerprint(step, upstream: ["up": ["nodes": .map(descending)]])
        #expect(a == b)
        #expect(a != Executor.fingerprint(step, upstream: ["up": ["nodes": .map(ascending.merging(["key-0": .int(99)]) { $1 })]]))
    }

    @Test func teardownSeesTheRecordedOutputsOfItsDependencies() async throws {
        let harness = try Harness()
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "api", outputs: ["endpoint": .string("http://127.0.0.1:4566")], probe: probe)),
            .step(ScriptedStep(id: "machines", dependencies: ["api"], probe: probe)),
        ]
        _ = try await harness.run(nodes)
        _ = try await harness.run(nodes, command: .down)
        #expect(probe.upstream("machines")?["api"]?["endpoint"] == .string("http://127.0.0.1:4566"))
    }
}
