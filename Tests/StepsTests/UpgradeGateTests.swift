@testable import App
@testable import Engine
import Foundation
@testable import Kube
import Testing

/// The rolling upgrade's rules that need no node: release order, the gate's limit and its
/// priority for a node an interrupted run left cordoned.
struct UpgradeGateTests {
    @Test func releasesAreOrderedByKubernetesVersionThenK3sBuildAndAnOlderPinIsRefused() throws {
        let ordered = ["v1.32.9+k3s1", "v1.33.4+k3s1", "v1.33.4+k3s2", "v1.33.5+k3s1", "v1.33.10+k3s1", "v1.34.0-rc1+k3s1"].map { K3sVersion($0)! }
        #expect(ordered == ordered.sorted())
        #expect(K3sVersion("stable") == nil && K3sVersion("v1.33") == nil)
        #expect(throws: StepFailure.self) { try K3sVersion.refuseDowngrade(node: "worker-1", runs: "v1.33.5+k3s1", planned: "v1.33.4+k3s1") }
        try K3sVersion.refuseDowngrade(node: "worker-1", runs: "v1.33.4+k3s1", planned: "v1.33.4+k3s1")
        try K3sVersion.refuseDowngrade(node: "worker-1", runs: "v1.33.4+k3s1", planned: "v1.34.1+k3s1")
        try K3sVersion.refuseDowngrade(node: "worker-1", runs: "", planned: "v1.34.1+k3s1")
        do {
            try K3sVersion.refuseDowngrade(node: "worker-1", runs: "v1.34.1+k3s1", planned: "v1.33.4+k3s1")
        } catch let failure as StepFailure {
            #expect(failure.message.contains("worker-1 runs K3s v1.34.1+k3s1, newer than v1.33.4+k3s1") && !failure.retryable, "\(failure.message)")
        }
    }

    /// Records the order in which nodes held the gate and the most held at once.
    actor Trace {
        var order: [String] = []
        var holding = 0
        var most = 0
        func enter(_ node: String) { order.append(node); holding += 1; most = max(most, holding) }
        func leave() { holding -= 1 }
    }

    static func run(_ gate: UpgradeGate, _ nodes: [String], left: Set<String>, trace: Trace) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes {
                group.addTask {
                    try await gate.acquire(node) { left }
                    await trace.enter(node)
                    try await Task.sleep(for: .milliseconds(300))
                    await trace.leave()
                    await gate.release(node)
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func atMostTheLimitHoldTheGateAndWaitersGoInNameOrder() async throws {
        let trace = Trace()
        try await Self.run(UpgradeGate(limit: 1), ["worker-3", "worker-10", "worker-1", "worker-2"], left: [], trace: trace)
        #expect(await trace.most == 1)
        let order = await trace.order
        #expect(Array(order.dropFirst()) == Array(["worker-1", "worker-2", "worker-3", "worker-10"].filter { $0 != order.first }), "\(order)")

        let two = Trace()
        try await Self.run(UpgradeGate(limit: 2), ["worker-1", "worker-2", "worker-3", "worker-4"], left: [], trace: two)
        #expect(await two.most == 2)
    }

    @Test func aNodeLeftCordonedWhoseStepNeverComesStopsCountingAfterThePatience() async throws {
        let gate = UpgradeGate(limit: 1, leftOutPatience: .milliseconds(500))
        let started = ContinuousClock.now
        try await gate.acquire("worker-1") { ["worker-9"] }
        let waited = ContinuousClock.now - started
        // The upper bound only says it stops waiting (a full run's start has starved the pool for a minute).
        #expect(waited >= .milliseconds(500) && waited < .seconds(120), "\(waited)")
        #expect(await gate.outOfService == ["worker-1"])
    }

    @Test func aNodeAnInterruptedRunLeftCordonedGoesFirstAndCountsAgainstTheLimit() async throws {
        let trace = Trace()
        try await Self.run(UpgradeGate(limit: 1), ["worker-1", "worker-2", "worker-3"], left: ["worker-3"], trace: trace)
        let order = await trace.order
        #expect(order.first == "worker-3", "\(order)")
        #expect(await trace.most == 1)
    }
}
