import Foundation
import Synchronization
@testable import Engine

/// A temporary directory removed when the test ends.
final class TemporaryDirectory: Sendable {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("provision-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Counts calls and concurrency across test steps.
final class Probe: Sendable {
    private let state = Mutex<(applies: [StepID: Int], checks: [StepID: Int], order: [StepID], running: Int, peak: Int)>(([:], [:], [], 0, 0))

    func applied(_ id: StepID) -> Int { state.withLock { $0.applies[id] ?? 0 } }
    func checked(_ id: StepID) -> Int { state.withLock { $0.checks[id] ?? 0 } }
    var order: [StepID] { state.withLock { $0.order } }
    var peak: Int { state.withLock { $0.peak } }

    func enter(_ id: StepID) -> Int {
        state.withLock {
            $0.applies[id, default: 0] += 1
            $0.order.append(id)
            $0.running += 1
            $0.peak = max($0.peak, $0.running)
            return $0.applies[id]!
        }
    }
    func leave() { state.withLock { $0.running -= 1 } }
    func check(_ id: StepID) { state.withLock { $0.checks[id, default: 0] += 1 } }

    private let upstreams = Mutex<[StepID: [StepID: StepOutputs]]>([:])
    func sawUpstream(_ id: StepID, _ upstream: [StepID: StepOutputs]) { upstreams.withLock { $0[id] = upstream } }
    func upstream(_ id: StepID) -> [StepID: StepOutputs]? { upstreams.withLock { $0[id] } }

    private let keeping = Mutex<[StepID: Bool]>([:])
    func sawKeepsInfrastructure(_ id: StepID, _ value: Bool) { keeping.withLock { $0[id] = value } }
    /// Whether `id`'s last teardown was told that the machines stay.
    func keepsInfrastructure(_ id: StepID) -> Bool? { keeping.withLock { $0[id] } }
}

/// A step whose behaviour a test scripts: how long apply takes, how many attempts fail first, and
/// whether check says it is done.
struct ScriptedStep: Step {
    let id: StepID
    var dependencies: [StepID] = []
    var retry = RetryPolicy()
    var inputs = "v1"
    var failures = 0
    var retryable = true
    var work: Duration = .zero
    var satisfied = false
    var outputs: StepOutputs = [:]
    var teardownFailures = 0
    var checkable = false
    var infrastructure = false
    let probe: Probe

    var hasTeardown: Bool { true }
    var hasCheck: Bool { checkable }
    var isInfrastructure: Bool { infrastructure }

    func teardown(_ context: StepContext) async throws {
        probe.sawUpstream(id, context.upstream)
        probe.sawKeepsInfrastructure(id, context.keepsInfrastructure)
        let attempt = probe.enter(StepID("down:\(id)"))
        defer { probe.leave() }
        if attempt <= teardownFailures { throw StepFailure("scripted teardown failure \(attempt)") }
    }

    func check(_ context: StepContext) async throws -> CheckResult {
        probe.check(id)
        return satisfied ? .satisfied(outputs) : .unsatisfied("scripted")
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        let attempt = probe.enter(id)
        defer { probe.leave() }
        if work > .zero { try await Task.sleep(for: work) }
        if attempt <= failures { throw StepFailure("scripted failure \(attempt)", retryable: retryable) }
        return outputs
    }
}

/// A step that runs a shell command through its context's supervisor; its check calls `onCheck`
/// and is never satisfied.
struct CommandStep: Step {
    let id: StepID
    let command: String
    let onCheck: @Sendable (StepContext) -> Void
    var inputs: String { command }
    var hasCheck: Bool { true }

    func check(_ context: StepContext) async throws -> CheckResult {
        onCheck(context)
        return .unsatisfied("not yet")
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        let result = try await context.processes.run(.shell(command, environment: ProcessInfo.processInfo.environment),
                                                     redactor: context.redactor, log: context.log)
        guard result.succeeded else { throw StepFailure("\(command): \(result.summary)") }
        return [:]
    }
}

/// A store in a temporary directory and an executor factory over it.
struct Harness: Sendable {
    let directory = TemporaryDirectory()
    let store: SQLiteRunStore

    init() throws {
        store = try SQLiteRunStore(directory: directory.url)
    }

    func run(_ nodes: [StepGraph.Node], parallelism: Int = 10, command: RunCommand = .up, recheck: Bool = false,
             resuming: RunRecord? = nil, events: (@Sendable (Event) -> Void)? = nil) async throws -> RunSummary {
        let graph = try StepGraph(nodes)
        let run = try resuming ?? store.beginRun(command: command, planPath: "test", planText: "")
        if let resuming { try store.resumeRun(resuming.id) }
        var executor = Executor(graph: graph, store: store, run: run, stateDirectory: directory.url, redactor: Redactor(),
                                processes: ProcessSupervisor(interruptGrace: .seconds(2)), parallelism: parallelism,
                                observer: events ?? { _ in })
        executor.recheck = recheck
        let summary = command.tearsDown ? try await executor.down() : try await executor.up()
        try store.finishRun(run.id, status: summary.status)
        return summary
    }
}
