@testable import App
import Engine
import Foundation
@testable import PlanLanguage
import Testing

/// Which built-in steps `down --keep-infra` keeps, and that the K3s steps' teardowns reach a node
/// only when the machines are kept.
@Suite struct KeepInfraStepsTests {
    /// Every step of the aws plan by id (a fan-out's by its own id, made for one item).
    func awsSteps() throws -> [StepID: any Step] {
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        let graph = try plan.graph(secrets: [:])
        return graph.nodes.values.reduce(into: [:]) { steps, node in
            switch node {
            case .step(let step): steps[step.id] = step
            case .fanOut(let fanOut): steps[fanOut.id] = fanOut.make("worker-1")
            }
        }
    }

    @Test func onlyTheStepsThatMakeTheMachinesAreInfrastructure() throws {
        let steps = try awsSteps()
        let infrastructure = Set(steps.filter { $0.value.isInfrastructure }.keys)
        #expect(infrastructure == ["ssh.key", "terraform.apply", "node.ready"], "\(infrastructure)")
        #expect(steps["k3s.server"]?.hasTeardown == true && steps["k3s.join"]?.hasTeardown == true)
    }

    /// A teardown context without an SSH pool or an inventory: any attempt to reach a node fails.
    func context(keepsInfrastructure: Bool, directory: URL) throws -> StepContext {
        var context = StepContext(runID: 1, stepID: "k3s.server", attempt: 1, upstream: [:], item: nil, stateDirectory: directory,
                                  log: StepLog(path: directory.appendingPathComponent("log"), redactor: Redactor()), redactor: Redactor(),
                                  processes: ProcessSupervisor(), store: try SQLiteRunStore(directory: directory))
        context.keepsInfrastructure = keepsInfrastructure
        return context
    }

    @Test func k3sTeardownsUninstallNothingUnlessTheMachinesAreKept() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keep-infra-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let steps = try awsSteps()
        for id in ["k3s.server", "k3s.join"] {
            let step = try #require(steps[StepID(id)])
            // The machines go: nothing is run anywhere (no node could be reached here).
            try await step.teardown(try context(keepsInfrastructure: false, directory: directory))
            // The machines stay: the teardown goes to the node (and fails here, with no route to it).
            await #expect(throws: StepFailure.self, "\(id) reaches for its node") {
                try await step.teardown(try context(keepsInfrastructure: true, directory: directory))
            }
        }
        let log = try String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)
        #expect(log.contains("K3s is not uninstalled first") && log.contains("its agent is not uninstalled first"), "\(log)")
    }
}
