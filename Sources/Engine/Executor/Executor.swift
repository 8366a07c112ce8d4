import Digest
import Foundation

/// Converges the world to a step graph (`up`), or tears it down (`down`), recording everything in
/// a run store.
///
/// `up` and `down` first stop what a killed run left running (`Executor+Leftovers.swift`), so no
/// step ever runs twice at the same time. `up` then visits every step in dependency order (see
/// `GraphWalker` for the concurrency, failure and cancellation contract). A step that succeeded
/// before with the same fingerprint, and none of whose dependencies was applied in this run, is
/// left alone. Otherwise the step's state machine
/// (`Executor+StepRun.swift`) runs it. `down` runs teardowns in reverse dependency order.
public struct Executor: Sendable {
    /// The graph to run.
    public let graph: StepGraph
    /// Where progress is recorded.
    public let store: any RunStore
    /// The run being executed (new for `up`/`down`, reopened for `resume`).
    public let run: RunRecord
    /// The per-plan state directory; step logs go to its `logs/` folder.
    public let stateDirectory: URL
    /// Hides secrets in logs, events, errors and outputs.
    public let redactor: Redactor
    /// Starts and interrupts child processes.
    public let processes: ProcessSupervisor
    /// Most steps running at once.
    public let parallelism: Int
    /// Receives every event as it happens (the CLI renders them).
    public let observer: @Sendable (Event) -> Void
    /// `up --recheck`: run the check of every succeeded, unchanged step against the live world
    /// and apply again where it drifted (instead of trusting the store).
    public var recheck = false
    /// How long a child left running by a killed run gets after SIGTERM before SIGKILL.
    public var leftoverGrace: Duration = .seconds(10)

    /// Creates an executor.
    public init(
        graph: StepGraph, store: any RunStore, run: RunRecord, stateDirectory: URL, redactor: Redactor,
        processes: ProcessSupervisor, parallelism: Int = 10, observer: @escaping @Sendable (Event) -> Void = { _ in }
    ) {
        self.graph = graph
        self.store = store
        self.run = run
        self.stateDirectory = stateDirectory
        self.redactor = redactor
        self.processes = processes
        self.parallelism = max(1, parallelism)
        self.observer = observer
    }

    /// Converges every step; returns what happened. Throws only when the run store fails, after
    /// which nothing more is started (the store still holds a consistent state for `resume`).
    public func up() async throws -> RunSummary {
        try await stopLeftovers()
        let records = try store.steps()
        let appliedInRun = try store.stepsApplied(inRun: run.id)
        let vertices = graph.order.map { vertex(for: graph.nodes[$0]!) }
        return try await GraphWalker(parallelism: parallelism).walk(
            vertices,
            work: { vertex, upstream in
                guard case .step(let step, let item) = vertex.kind else { return .unchanged([:]) }
                return try await self.converge(step, item: item, record: records[step.id], upstream: upstream, appliedInRun: appliedInRun)
            },
            skip: { vertex, reason in
                notify(try store.mark(vertex.id, run: run.id, state: .skipped, message: reason))
            },
            expand: { fanOut, outcomes in try expand(fanOut, sourceOutputs: outcomes[fanOut.source]?.outputs ?? [:]) }
        )
    }

    /// The concrete steps of the graph, fan-outs expanded from their persisted items (a fan-out
    /// never expanded contributes nothing).
    public func expandedSteps() throws -> [any Step] {
        try graph.expanded(in: store).steps
    }

    func vertex(for node: StepGraph.Node) -> GraphWalker.Vertex {
        switch node {
        case .step(let step): GraphWalker.Vertex(id: step.id, dependencies: step.dependencies, kind: .step(step, item: nil))
        case .fanOut(let fanOut): GraphWalker.Vertex(id: fanOut.id, dependencies: fanOut.allDependencies, kind: .fanOut(fanOut))
        }
    }

    private func expand(_ fanOut: FanOut, sourceOutputs: StepOutputs) throws -> [GraphWalker.Vertex] {
        guard let items = sourceOutputs[fanOut.output]?.items else {
            throw GraphError.badFanOutItems(fanOut: fanOut.id, source: fanOut.source, output: fanOut.output)
        }
        if try store.expansion(fanOut.id) != items {
            try store.saveExpansion(fanOut.id, items: items)
            try store.append([Event(run: run.id, step: fanOut.id, kind: .stepExpanded, message: items.joined(separator: ", "))]).forEach(notify)
        }
        return items.map { item in
            let child = fanOut.make(item)
            return GraphWalker.Vertex(id: child.id, dependencies: fanOut.allDependencies, kind: .step(child, item: item))
        }
    }

    /// The fingerprint of a step's inputs together with its dependencies' outputs.
    public static func fingerprint(_ step: any Step, upstream: [StepID: StepOutputs]) -> String {
        var text = step.inputs
        for (id, outputs) in upstream.sorted(by: { $0.key < $1.key }) {
            text += "\n\u{1}\(id)\u{1}"
            for (key, value) in outputs.sorted(by: { $0.key < $1.key }) { text += "\(key)=\(value.canonical)\u{2}" }
        }
        return SHA256.hex(text)
    }

    func notify(_ event: Event) { observer(event) }

    /// A context for `step`; its log forwards output lines to the event table.
    func context(for step: StepID, attempt: Int, item: String?, upstream: [StepID: StepOutputs], recordEvents: Bool = true) -> StepContext {
        let logs = stateDirectory.appendingPathComponent("logs", isDirectory: true)
        try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let runID = run.id
        let store = store
        let observer = observer
        let log = StepLog(path: logs.appendingPathComponent(Self.logFileName(step)), redactor: redactor) { lines in
            guard recordEvents else { return }
            let events = lines.map { Event(run: runID, step: step, kind: .output, attempt: attempt, message: $0) }
            // The events as stored; if the store refuses them, still show them.
            ((try? store.append(events)) ?? events).forEach(observer)
        }
        // Children of a run are recorded, so a later run can stop what a killed one left; an
        // audit's read-only checks run outside any run's lock and are not.
        let children = recordEvents ? processes.recording(to: AttemptChildren(store: store, step: step, run: runID, attempt: attempt)) : processes
        var context = StepContext(runID: run.id, stepID: step, attempt: attempt, upstream: upstream, item: item,
                                  stateDirectory: stateDirectory, log: log, redactor: redactor, processes: children, store: store)
        context.keepsInfrastructure = run.command.keepsInfrastructure
        return context
    }

    /// The log file name for a step: its id with anything but letters, digits, `.`, `_` and `-` escaped.
    public static func logFileName(_ step: StepID) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        return step.rawValue.map { allowed.contains($0) ? String($0) : String(format: "%%%02X", $0.asciiValue ?? 0x3F) }.joined() + ".log"
    }
}
