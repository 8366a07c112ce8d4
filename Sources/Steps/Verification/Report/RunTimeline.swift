import Engine
import Foundation

/// A run's steps on a timeline, rebuilt from its events: when each started and ended, its
/// attempts, retries and outcome, its fan-out group, and which steps made up the critical path.
public struct RunTimeline: Codable, Sendable, Equatable {
    /// One step of the run.
    public struct Bar: Codable, Sendable, Equatable {
        /// The step's id.
        public var step: String
        /// The fan-out it belongs to (`node.ready` for `node.ready/worker-1`), nil for a plain step.
        public var group: String?
        /// Seconds from the run's start to the step's first event.
        public var start: Double
        /// Seconds from the run's start to the step's last outcome.
        public var end: Double
        /// Attempts made in this run (0 when it was never applied: adopted, unchanged, skipped).
        public var attempts: Int
        /// Attempts that failed and were tried again.
        public var retries: Int
        /// succeeded, adopted, unchanged, failed, cancelled, skipped, torn_down, kept (running: no outcome yet).
        public var outcome: String
        /// The last failure, skip or cancel reason.
        public var message: String?
        /// On the critical path.
        public var critical = false

        /// Seconds between start and end.
        public var duration: Double { max(0, end - start) }
    }

    /// The run's id in the store.
    public var run: Int64
    /// up, resume or down.
    public var command: String
    /// When the run started.
    public var started: Date
    /// The run's length: to its end, or to its last event when it has not finished.
    public var seconds: Double
    /// One per step, in the order the steps started, children of a fan-out together.
    public var bars: [Bar]

    /// Builds the timeline of a run from its events (`run.started` first); `dependencies` (step →
    /// what it needs, fan-out children included) marks the critical path: from the step that ended
    /// last, back through the dependency that ended last, to the start.
    public static func build(run: Int64, command: String, started origin: Date, finished: Date?, events: [Event],
                             dependencies: [String: [String]]) -> RunTimeline {
        var bars: [String: Bar] = [:]
        var order: [String] = []
        for event in events {
            guard let step = event.step?.rawValue else { continue }
            let at = event.at.timeIntervalSince(origin)
            if bars[step] == nil {
                guard event.kind != .stepExpanded, event.kind != .output else { continue }
                let parts = step.split(separator: "/", maxSplits: 1)
                bars[step] = Bar(step: step, group: parts.count == 2 ? String(parts[0]) : nil, start: at, end: at, attempts: 0, retries: 0, outcome: "running")
                order.append(step)
            }
            switch event.kind {
            case .stepStarted:
                bars[step]!.attempts = max(bars[step]!.attempts, event.attempt ?? 1)
                bars[step]!.end = at
            case .stepRetrying:
                bars[step]!.retries += 1
                bars[step]!.message = event.message
                bars[step]!.end = at
            case .stepSucceeded, .stepAdopted, .stepUnchanged, .stepFailed, .stepCancelled, .stepSkipped, .stepTornDown, .stepKept:
                bars[step]!.end = at
                bars[step]!.outcome = String(event.kind.rawValue.dropFirst("step.".count))
                if event.kind == .stepFailed || event.kind == .stepSkipped || event.kind == .stepCancelled { bars[step]!.message = event.message }
            default:
                break
            }
        }
        // Children of a fan-out stay together, where the group's first child started.
        var grouped: [String] = []
        var placed = Set<String>()
        for step in order where !placed.contains(step) {
            let group = bars[step]?.group
            for member in order where member == step || (group != nil && bars[member]?.group == group) {
                grouped.append(member)
                placed.insert(member)
            }
        }
        let last = (finished ?? events.last?.at ?? origin).timeIntervalSince(origin)
        var timeline = RunTimeline(run: run, command: command, started: origin, seconds: max(0, last), bars: grouped.compactMap { bars[$0] })
        timeline.markCriticalPath(dependencies)
        return timeline
    }

    /// The steps on the critical path, in order.
    public var criticalPath: [String] { bars.filter(\.critical).sorted { $0.start < $1.start }.map(\.step) }

    private mutating func markCriticalPath(_ dependencies: [String: [String]]) {
        let byStep = Dictionary(bars.enumerated().map { ($1.step, $0) }, uniquingKeysWith: { first, _ in first })
        guard var current = bars.indices.filter({ bars[$0].outcome != "skipped" }).max(by: { bars[$0].end < bars[$1].end }) else { return }
        var seen = Set<Int>()
        while seen.insert(current).inserted {
            bars[current].critical = true
            let needs = dependencies[bars[current].step] ?? dependencies[bars[current].group ?? ""] ?? []
            // A fan-out's id stands for all of its children.
            let candidates = needs.flatMap { need in bars.indices.filter { bars[$0].step == need || bars[$0].group == need } }
                + needs.compactMap { byStep[$0] }
            guard let previous = candidates.filter({ bars[$0].end <= bars[current].start + 0.001 || bars[$0].end <= bars[current].end })
                .max(by: { bars[$0].end < bars[$1].end }) else { return }
            current = previous
        }
    }
}
