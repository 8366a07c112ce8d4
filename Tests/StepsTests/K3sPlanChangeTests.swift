@testable import App
@testable import Engine
import Foundation
@testable import Infra
@testable import Kube
@testable import PlanLanguage
import Testing

/// `provision plan` on the aws plan's real K3s steps: a changed `k3s.version` is named on the steps
/// it reinstalls, which come server first, then the workers together; the machines stay unchanged.
@Suite struct K3sPlanChangeTests {
    static let nodes = ["control-plane", "worker-1", "worker-2", "worker-3"]

    /// Records every step of `graph` as succeeded with the fingerprint and inputs `up` would record,
    /// terraform.apply with the node lists its fan-outs read.
    static func recordConverged(_ graph: StepGraph, in store: SQLiteRunStore) throws {
        let run = try store.beginRun(command: .up, planPath: "plans/aws.yaml", planText: "")
        let inventory: StepOutputs = [
            ClusterInventory.nodeNamesOutput: .list(nodes.map(OutputValue.string)),
            ClusterInventory.workerNamesOutput: .list(nodes.dropFirst().map(OutputValue.string)),
        ]
        var outputs: [StepID: StepOutputs] = [:]
        var children: [StepID: [StepID]] = [:]
        func record(_ step: any Step, dependencies: [StepID]) throws {
            let upstream = Dictionary(dependencies.flatMap { children[$0] ?? [$0] }.compactMap { id in outputs[id].map { (id, $0) } },
                                      uniquingKeysWith: { $1 })
            let scoped = step.upstreamScope(upstream) ?? upstream
            let produced = step.id == TerraformApplyStep.id ? inventory : [:]
            try store.markSucceeded(step.id, run: run.id, fingerprint: Executor.fingerprint(step, upstream: scoped),
                                    inputs: RecordedInputs(step, upstream: scoped), outputs: produced, duration: .zero, adopted: false,
                                    attempt: 1, message: "")
            outputs[step.id] = produced
        }
        for id in graph.order {
            switch graph.nodes[id]! {
            case .step(let step): try record(step, dependencies: step.dependencies)
            case .fanOut(let fanOut):
                let items = outputs[fanOut.source]?[fanOut.output]?.items ?? []
                try store.saveExpansion(fanOut.id, items: items)
                let made = items.map(fanOut.make)
                children[fanOut.id] = made.map(\.id)
                for child in made { try record(child, dependencies: fanOut.allDependencies) }
            }
        }
        try store.finishRun(run.id, status: .succeeded)
    }

    static func plan(_ text: String, store: SQLiteRunStore, directory: URL) async throws -> ChangePlan {
        let plan = try PlanLoader.parse(Data(text.utf8), path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        let run = RunRecord(id: 0, command: .up, planPath: plan.path, planText: text, startedAt: Date(), finishedAt: nil, status: .running)
        let executor = Executor(graph: try plan.graph(secrets: [:]), store: store, run: run, stateDirectory: directory, redactor: Redactor(),
                                processes: ProcessSupervisor())
        return try await executor.plan(refresh: false)
    }

    @Test func aK3sVersionChangeNamesTheVersionOnTheStepsItReinstallsServerFirstThenTheWorkersOneAtATime() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("k3s-plan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteRunStore(directory: directory)
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("plans/aws.yaml"), encoding: .utf8)
        let version = try #require(text.firstMatch(of: /version: (v[^ \n]+)/)?.1).description
        try Self.recordConverged(try PlanLoader.parse(Data(text.utf8), path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
            .graph(secrets: [:]), in: store)

        let same = try await Self.plan(text, store: store, directory: directory)
        #expect(!same.hasChanges, "\(same.steps.filter(\.changes).map { "\($0.id): \($0.reasons)" })")

        let upgraded = try await Self.plan(text.replacingOccurrences(of: "version: \(version)", with: "version: v1.38.0+k3s1"),
                                           store: store, directory: directory)
        let change = PlanReason.input(.planKey("k3s.version", old: version, new: "v1.38.0+k3s1"))
        #expect(upgraded["k3s.server"]?.action == .run && upgraded["k3s.server"]?.reasons.first == change)
        for worker in Self.nodes.dropFirst() {
            #expect(upgraded[StepID("k3s.join/\(worker)")]?.reasons.contains(change) == true)
        }
        for machine in ["ssh.key", "terraform.apply"] + Self.nodes.map({ "node.ready/\($0)" }) {
            #expect(upgraded[StepID(machine)]?.action == .unchanged, "\(machine) stays")
        }
        let order = try #require(K3sNodeOrder(upgraded))
        #expect(order.old == version && order.new == "v1.38.0+k3s1")
        #expect(order.waves == [["k3s.server"], ["k3s.join/worker-1"], ["k3s.join/worker-2"], ["k3s.join/worker-3"]], "the server, then one worker at a time")
        let two = try #require(K3sNodeOrder(upgraded, maxUnavailable: 2))
        #expect(two.waves == [["k3s.server"], ["k3s.join/worker-1", "k3s.join/worker-2"], ["k3s.join/worker-3"]], "k3s.max_unavailable 2")
    }
}
