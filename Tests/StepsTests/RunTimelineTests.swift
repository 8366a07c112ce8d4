@testable import App
@testable import Engine
import Foundation
import Testing
@testable import Verification

/// `RunTimeline` rebuilds a run from its events: attempts, retries, outcomes, fan-out groups and
/// the critical path.
@Suite struct RunTimelineTests {
    static let origin = Date(timeIntervalSince1970: 1_800_000_000)

    static func event(_ step: String?, _ kind: Event.Kind, at seconds: Double, attempt: Int? = nil, _ message: String = "") -> Event {
        Event(run: 1, step: step.map { StepID($0) }, kind: kind, attempt: attempt, message: message, at: origin.addingTimeInterval(seconds))
    }

    static let events: [Event] = [
        event(nil, .runStarted, at: 0, "up plans/x.yaml"),
        event("a", .stepStarted, at: 0, attempt: 1),
        event("a", .stepSucceeded, at: 2),
        event("fan", .stepExpanded, at: 2, "x y"),
        event("fan/x", .stepStarted, at: 2, attempt: 1),
        event("slow", .stepStarted, at: 2, attempt: 1),
        event("fan/y", .stepStarted, at: 2.1, attempt: 1),
        event("fan/x", .stepSucceeded, at: 3),
        event("slow", .stepRetrying, at: 4, attempt: 1, "exit 1: not yet"),
        event("fan/y", .stepFailed, at: 5, attempt: 1, "exit 3: broken"),
        event("slow", .stepStarted, at: 5, attempt: 2),
        event("slow", .stepSucceeded, at: 9),
        event("last", .stepSkipped, at: 9, "upstream 'fan/y' did not succeed"),
        event(nil, .runFinished, at: 9, "failed"),
    ]

    static let dependencies = ["fan": ["a"], "fan/x": ["a"], "fan/y": ["a"], "slow": ["a"], "last": ["fan/x", "fan/y", "slow"]]

    @Test func retriesFailuresAndSkipsAreRecordedPerStepWithTheirReasons() {
        let timeline = RunTimeline.build(run: 1, command: "up", started: Self.origin, finished: Self.origin.addingTimeInterval(9),
                                         events: Self.events, dependencies: Self.dependencies)
        let bars = Dictionary(uniqueKeysWithValues: timeline.bars.map { ($0.step, $0) })
        #expect(timeline.bars.count == 5, "one bar per step, no bar for the fan-out's own expansion event")
        #expect(bars["slow"]?.attempts == 2 && bars["slow"]?.retries == 1 && bars["slow"]?.outcome == "succeeded")
        #expect(bars["slow"]?.message == "exit 1: not yet")
        #expect(bars["slow"]?.start == 2 && bars["slow"]?.end == 9)
        #expect(bars["fan/y"]?.outcome == "failed" && bars["fan/y"]?.message == "exit 3: broken")
        #expect(bars["last"]?.outcome == "skipped" && bars["last"]?.attempts == 0)
        #expect(timeline.seconds == 9)
    }

    @Test func childrenOfAFanOutStayTogetherUnderTheirGroup() {
        let timeline = RunTimeline.build(run: 1, command: "up", started: Self.origin, finished: nil, events: Self.events, dependencies: [:])
        #expect(timeline.bars.map(\.step) == ["a", "fan/x", "fan/y", "slow", "last"], "fan/y moved up next to fan/x")
        #expect(timeline.bars.filter { $0.group == "fan" }.count == 2)
    }

    @Test func theCriticalPathRunsBackFromTheLastStepThroughTheDependencyThatEndedLast() {
        let timeline = RunTimeline.build(run: 1, command: "up", started: Self.origin, finished: Self.origin.addingTimeInterval(9),
                                         events: Self.events, dependencies: Self.dependencies)
        #expect(timeline.criticalPath == ["a", "slow"], "the skipped step is not on it; slow ended last")
    }
}
