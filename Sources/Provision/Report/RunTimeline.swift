import Engine
import Foundation

/// A run's steps on a timeline, rebuilt from its events: when each started and ended, its
/// attempts, retries and outcome, its fan-out group, and which steps made up the critical path.
struct RunTimeline: Codable, Sendable, Equatable {
    struct Bar: Codable, Sendable, Equatable {
        var step: String
        /// The fan-out it belongs to (`node.ready` for `node.ready/worker-1`), nil for a plain step.
        var group: String?
        /// Seconds from the run's start.
        var start: Double
        var end: Double
        var attempts: Int
        var retries: Int
        /// succeeded, adopted, unchanged, failed, cancelled, skipped, torn_down.
        var outcome: String
        var message: String?
        var critical = false

        var duration: Double { max(0, end - start) }
    }

    var run: Int64
    var command: String
    var started: Date
    var seconds: Double
    var bars: [Bar]

    /// Builds the timeline of `run` from its events; `dependencies` (step → what it needs, fan-out
    /// children included) marks the critical path: from the step that ended last, back through
    /// the dependency that ended last, to the start.
    static func build(run: RunRecord, events: [Event], dependencies: [String: [String]]) -> RunTimeline {
        let origin = run.startedAt
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
            case .stepRetrying:
                bars[step]!.retries += 1
                bars[step]!.message = event.message
            case .stepSucceeded, .stepAdopted, .stepUnchanged, .stepFailed, .stepCancelled, .stepSkipped, .stepTornDown:
                bars[step]!.end = at
                bars[step]!.outcome = String(event.kind.rawValue.dropFirst("step.".count))
                if event.kind == .stepFailed || event.kind == .stepSkipped || event.kind == .stepCancelled { bars[step]!.message = event.message }
            default:
                break
            }
        }
        var timeline = RunTimeline(run: run.id, command: run.command.rawValue, started: origin,
                                   seconds: (run.finishedAt ?? events.last?.at ?? origin).timeIntervalSince(origin),
                                   bars: order.compactMap { bars[$0] })
        timeline.markCriticalPath(dependencies)
        return timeline
    }

    /// The steps on the critical path, in order.
    var criticalPath: [String] { bars.filter(\.critical).sorted { $0.start < $1.start }.map(\.step) }

    private mutating func markCriticalPath(_ dependencies: [String: [String]]) {
        let byStep = Dictionary(uniqueKeysWithValues: bars.enumerated().map { ($1.step, $0) })
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
