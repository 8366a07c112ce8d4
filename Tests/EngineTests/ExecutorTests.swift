import Foundation
import Testing
@testable import Engine

@Suite struct ExecutorTests {
    let probe = Probe()

    @Test func dependenciesRunBeforeDependentsAndParallelismIsBounded() async throws {
        let harness = try Harness()
        var nodes: [StepGraph.Node] = [.step(ScriptedStep(id: "root", work: .milliseconds(20), probe: probe))]
        for i in 0..<12 {
            nodes.append(.step(ScriptedStep(id: StepID("leaf-\(i)"), dependencies: ["root"], work: .milliseconds(50), probe: probe)))
        }
        let summary = try await harness.run(nodes, parallelism: 3)
        #expect(summary.status == .succeeded)
        #expect(probe.order.first == "root")
        #expect(probe.peak == 3)
        #expect(try harness.store.steps().values.allSatisfy { $0.state == .succeeded })
    }

    @Test func retryableFailuresAreRetriedWithBackoffUntilSuccess() async throws {
        let harness = try Harness()
        let policy = RetryPolicy(attempts: 3, backoff: .milliseconds(100), maxBackoff: .seconds(1))
        let started = ContinuousClock.now
        let summary = try await harness.run([.step(ScriptedStep(id: "flaky", retry: policy, failures: 2, probe: probe))])
        let elapsed = ContinuousClock.now - started
        #expect(summary.status == .succeeded)
        #expect(probe.applied("flaky") == 3)
        // Equal jitter: at least half of 100 ms + 200 ms must have been waited.
        #expect(elapsed >= .milliseconds(150))
        let record = try #require(try harness.store.steps()["flaky"])
        #expect(record.attempts == 3)
        let retries = try harness.store.events(run: nil, step: "flaky", limit: 100).filter { $0.kind == .stepRetrying }
        #expect(retries.count == 2)
    }

    @Test func nonRetryableFailureStopsAfterOneAttempt() async throws {
        let harness = try Harness()
        let step = ScriptedStep(id: "fatal", retry: RetryPolicy(attempts: 5, backoff: .milliseconds(1)), failures: 10, retryable: false, probe: probe)
        let summary = try await harness.run([.step(step)])
        #expect(summary.status == .failed)
        #expect(probe.applied("fatal") == 1)
        #expect(try harness.store.steps()["fatal"]?.lastError == "scripted failure 1")
    }

    @Test func attemptRunningPastTheTimeoutIsCancelledAndCountedAsFailed() async throws {
        let harness = try Harness()
        let policy = RetryPolicy(attempts: 2, backoff: .milliseconds(10), timeout: .milliseconds(100))
        let started = ContinuousClock.now
        let summary = try await harness.run([.step(ScriptedStep(id: "slow", retry: policy, work: .seconds(300), probe: probe))])
        #expect(summary.status == .failed)
        #expect(probe.applied("slow") == 2)
        // Two 300 s attempts cut at 100 ms each; uncut they would take at least 600 s. The bound leaves
        // room for a loaded machine (full parallel runs measured 29 s, 56 s and 69 s here: tests that
        // wait synchronously hold the 2-thread cooperative pool) and still proves the cut.
        #expect(ContinuousClock.now - started < .seconds(240))
        #expect(try harness.store.steps()["slow"]?.lastError?.contains("timed out") == true)
    }

    @Test func upstreamFailureSkipsDownstreamOnceAndIndependentBranchesContinue() async throws {
        let harness = try Harness()
        let summary = try await harness.run([
            .step(ScriptedStep(id: "broken", failures: 1, probe: probe)),
            .step(ScriptedStep(id: "child", dependencies: ["broken"], probe: probe)),
            .step(ScriptedStep(id: "grandchild", dependencies: ["child"], probe: probe)),
            .step(ScriptedStep(id: "independent", probe: probe)),
        ])
        #expect(summary.status == .failed)
        #expect(summary.failures.map(\.0) == ["broken"])
        #expect(summary.outcomes["child"] == .skipped("not run: upstream 'broken' did not succeed"))
        #expect(summary.outcomes["grandchild"] == .skipped("not run: upstream 'child' did not succeed"))
        #expect(summary.outcomes["independent"]?.isSuccess == true)
        #expect(probe.applied("child") == 0 && probe.applied("grandchild") == 0)
        let records = try harness.store.steps()
        #expect(records["child"]?.state == .skipped)
        #expect(records["grandchild"]?.lastError?.contains("scripted failure") == false)
    }

    @Test func succeededStepsWithUnchangedInputsAreNotRunAgain() async throws {
        let harness = try Harness()
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "a", probe: probe)),
            .step(ScriptedStep(id: "b", dependencies: ["a"], probe: probe)),
        ]
        _ = try await harness.run(nodes)
        let second = try await harness.run(nodes)
        #expect(second.outcomes["a"] == .unchanged([:]))
        #expect(second.outcomes["b"] == .unchanged([:]))
        #expect(probe.applied("a") == 1 && probe.applied("b") == 1)
    }

    @Test func changedInputsRunTheStepAndEverythingDownstreamAgain() async throws {
        let harness = try Harness()
        _ = try await harness.run([
            .step(ScriptedStep(id: "a", probe: probe)), .step(ScriptedStep(id: "b", dependencies: ["a"], probe: probe)),
            .step(ScriptedStep(id: "other", probe: probe)),
        ])
        let second = try await harness.run([
            .step(ScriptedStep(id: "a", inputs: "v2", probe: probe)), .step(ScriptedStep(id: "b", dependencies: ["a"], probe: probe)),
            .step(ScriptedStep(id: "other", probe: probe)),
        ])
        #expect(probe.applied("a") == 2)
        #expect(probe.applied("b") == 2)
        #expect(probe.applied("other") == 1)
        #expect(second.outcomes["other"] == .unchanged([:]))
    }

    @Test func stepFoundRunningIsCheckedAndAdoptedWithoutApplying() async throws {
        let harness = try Harness()
        let step = ScriptedStep(id: "interrupted", satisfied: true, outputs: ["ip": .string("10.0.0.5")], probe: probe)
        let fingerprint = Executor.fingerprint(step, upstream: [:])
        let crashed = try harness.store.beginRun(command: .up, planPath: "test", planText: "")
        try harness.store.markRunning("interrupted", run: crashed.id, attempt: 1, fingerprint: fingerprint)
        let summary = try await harness.run([.step(step)])
        #expect(summary.outcomes["interrupted"] == .adopted(["ip": .string("10.0.0.5")]))
        #expect(probe.checked("interrupted") == 1)
        #expect(probe.applied("interrupted") == 0)
        #expect(try harness.store.steps()["interrupted"]?.outputs["ip"] == .string("10.0.0.5"))
    }

    @Test func fanOutExpandsPerItemAndPersistsTheExpansion() async throws {
        let harness = try Harness()
        let probe = probe
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "terraform", outputs: ["nodes": .list([.string("cp"), .string("w1"), .string("w2")])], probe: probe)),
            .fanOut(FanOut(id: "ready", source: "terraform", output: "nodes") { item in
                ScriptedStep(id: StepID("ready").child(item), dependencies: ["terraform"], probe: probe)
            }),
            .step(ScriptedStep(id: "after", dependencies: ["ready"], probe: probe)),
        ]
        let summary = try await harness.run(nodes)
        #expect(summary.status == .succeeded)
        #expect(try harness.store.expansion("ready") == ["cp", "w1", "w2"])
        for item in ["cp", "w1", "w2"] { #expect(probe.applied(StepID("ready/\(item)")) == 1) }
        #expect(probe.order.last == "after")
        let second = try await harness.run(nodes)
        #expect(second.outcomes.values.allSatisfy { $0 == .unchanged($0.outputs) })
    }

    @Test func fanOutChildFailureSkipsStepsDependingOnTheFanOut() async throws {
        let harness = try Harness()
        let probe = probe
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "list", outputs: ["lines": .list([.string("ok"), .string("bad")])], probe: probe)),
            .fanOut(FanOut(id: "each", source: "list", output: "lines") { item in
                ScriptedStep(id: StepID("each").child(item), dependencies: ["list"], failures: item == "bad" ? 1 : 0, probe: probe)
            }),
            .step(ScriptedStep(id: "after", dependencies: ["each"], probe: probe)),
        ]
        let summary = try await harness.run(nodes)
        #expect(summary.outcomes["each/ok"]?.isSuccess == true)
        #expect(summary.failures.map(\.0) == ["each/bad"])
        #expect(summary.outcomes["after"] == .skipped("not run: upstream 'each' did not succeed"))
    }

    @Test func cancellationStopsNewStepsAndRecordsRunningOnesAsCancelled() async throws {
        let harness = try Harness()
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "long", work: .seconds(600), probe: probe)),
            .step(ScriptedStep(id: "later", dependencies: ["long"], probe: probe)),
        ]
        let task = Task { try await harness.run(nodes) }
        // Generous: a full run's start has starved the cooperative pool for a minute.
        try await waitUntil(timeout: .seconds(180)) { probe.applied("long") == 1 }
        task.cancel()
        let summary = try await task.value
        #expect(summary.cancelled)
        #expect(summary.outcomes["long"] == .cancelled)
        #expect(probe.applied("later") == 0)
        #expect(try harness.store.steps()["long"]?.state == .cancelled)
    }

    @Test func downTearsDependentsDownFirstRetriesFailuresAndRecordsDestroyed() async throws {
        let harness = try Harness()
        let policy = RetryPolicy(attempts: 2, backoff: .milliseconds(10))
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "network", probe: probe)),
            .step(ScriptedStep(id: "server", dependencies: ["network"], retry: policy, teardownFailures: 1, probe: probe)),
            .step(ScriptedStep(id: "never-applied", probe: probe)),
        ]
        _ = try await harness.run(Array(nodes.prefix(2)))
        let summary = try await harness.run(nodes, command: .down)
        #expect(summary.status == .succeeded)
        #expect(probe.order.suffix(3) == ["down:server", "down:server", "down:network"])
        #expect(probe.applied("down:never-applied") == 0)
        let records = try harness.store.steps()
        #expect(records["server"]?.state == .destroyed)
        #expect(records["network"]?.state == .destroyed)
        let retries = try harness.store.events(run: nil, step: "server", limit: 100).filter { $0.kind == .stepRetrying }
        #expect(retries.first?.message == "teardown: scripted teardown failure 1")
    }

    @Test func failedTeardownKeepsWhatItDependsOn() async throws {
        let harness = try Harness()
        let nodes: [StepGraph.Node] = [
            .step(ScriptedStep(id: "network", probe: probe)),
            .step(ScriptedStep(id: "server", dependencies: ["network"], teardownFailures: 5, probe: probe)),
        ]
        _ = try await harness.run(nodes)
        let summary = try await harness.run(nodes, command: .down)
        #expect(summary.failures.map(\.0) == ["server"])
        #expect(summary.outcomes["network"] == .skipped("not run: upstream 'server' did not succeed"))
        #expect(probe.applied("down:network") == 0)
    }

    @Test func backoffGrowsExponentiallyWithEqualJitterAndACap() {
        let policy = RetryPolicy(attempts: 10, backoff: .seconds(1), maxBackoff: .seconds(8))
        #expect(policy.delay(after: 1, random: 0) == .milliseconds(500))
        #expect(policy.delay(after: 1, random: 1) == .seconds(1))
        #expect(policy.delay(after: 3, random: 1) == .seconds(4))
        #expect(policy.delay(after: 9, random: 1) == .seconds(8))
        #expect(policy.delay(after: 9, random: 0) == .seconds(4))
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw StepFailure("condition not met within \(timeout)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}
