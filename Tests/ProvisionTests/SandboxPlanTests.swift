@testable import App
@testable import Engine
import Foundation
import TestSupport
import Testing

/// `provision plan --refresh` on a real sandbox (moto, one worker, the pipeline under the nodes'
/// service manager): a unit stopped behind the store's back is what the live checks name.
@Suite(.serialized) struct SandboxPlanTests {
    @Test func planRefreshOnASandboxWithAStoppedUnitNamesThatUnitAndOnlyWhatDependsOnIt() async throws {
        let sandbox = Sandbox(name: "plan-\(UInt16.random(in: 1000...65000))", workers: 1,
                              pipeline: "rate: 20\ngpus_per_producer: 2\nbatch_size: 200\nbatch_wait_ms: 100\npartitions: 3")
        defer { sandbox.cleanUp() }
        let up = try await sandbox.run(["up"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        let worker = try #require(nodes.inventory.workers.first)
        let stop = try await nodes.run("rc-service pipeline-producer stop 2>/dev/null || systemctl stop pipeline-producer", on: worker)
        await nodes.pool.closeAll()
        #expect(stop.succeeded, "\(stop.stderr)")

        // From the store alone nothing changed; the producer is one `up` checks live first.
        var started = ContinuousClock.now
        let stale = try await sandbox.run(["plan", "--json", "--detailed-exitcode"])
        let fromStore = ContinuousClock.now - started
        #expect(stale.code == 0, "\(stale.stdout)\(stale.stderr.suffix(2000))")
        let staleSteps = try Self.steps(stale)
        #expect(staleSteps["service.producer/worker-1"]?.action == "check")

        started = ContinuousClock.now
        let live = try await sandbox.run(["plan", "--refresh", "--json", "--detailed-exitcode"])
        print("plan on a 1-worker sandbox: \(fromStore) from the store, \(ContinuousClock.now - started) with --refresh")
        #expect(live.code == 2, "\(live.stdout)\(live.stderr.suffix(2000))")
        let steps = try Self.steps(live)
        let producer = try #require(steps["service.producer/worker-1"])
        #expect(producer.action == "run")
        #expect(producer.reasons.contains { $0.hasPrefix("live check failed: pipeline-producer on worker-1") }, "\(producer.reasons)")
        let running = Set(steps.filter { $0.value.action == "run" }.keys)
        #expect(running == ["service.producer/worker-1", "verify"], "only the stopped unit and what reads it: \(running)")
        #expect(steps["service.processor"]?.action == "unchanged" && steps["service.processor"]?.reasons == ["live check passed"])
        let text = try await sandbox.run(["plan", "--refresh"])
        #expect(text.stdout.contains("pipeline-producer on worker-1"), "\(text.stdout)")
    }

    /// Each step's action and reasons' texts from `plan --json`.
    static func steps(_ result: CLI.Result) throws -> [String: (action: String, reasons: [String])] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        var steps: [String: (action: String, reasons: [String])] = [:]
        for step in object["steps"] as? [[String: Any]] ?? [] {
            guard let id = step["id"] as? String else { continue }
            steps[id] = (step["action"] as? String ?? "", (step["reasons"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String })
        }
        return steps
    }
}
