@testable import App
@testable import Engine
import Foundation
@testable import Infra
import TestSupport

/// The sandboxes of the fault suites (SandboxSelfHealingTests and its nested Repair): made, brought up
/// past the load of a full run's start, drained; and a unit's program as its supervisor records it.
enum FaultSandbox {
    /// A sandbox at 10 events/s per producer (the tests are about losses, not throughput), its
    /// broker's log in moto's S3 (`durable`, the plan's default) or in memory (the faults that do
    /// not restart the broker: moto serves every request of a durable broker, and a full test run
    /// starts many sandboxes at once).
    static func make(_ prefix: String, durable: Bool = true) -> Sandbox {
        Sandbox(name: "\(prefix)-\(UInt16.random(in: 1000...65000))", workers: 2, pipeline: SandboxRuns.pipeline(rate: 10), durableBroker: durable)
    }

    /// The first `up` of a test, before its fault. When only `verify` failed (everything else
    /// converged: a full test run's load once kept a fresh sandbox from verifying in its windows),
    /// verify's log is printed, for the record, and `up` runs once more; the tests judge what follows.
    static func firstUp(_ sandbox: Sandbox) async throws -> CLI.Result {
        var up = try await sandbox.run(["up"])
        // At a full run's start the durable broker (Tansu on a starved moto's S3) can pass records
        // on minutes late (verify saw latencies at the histogram's 60 s top): up to three more ups,
        // a minute apart, while the load of the run's start passes.
        for _ in 0..<3 where up.code != 0 && up.stderr.contains("✗ verify") && !up.stderr.contains("✗ service.") && !up.stderr.contains("✗ terraform") {
            let log = try await sandbox.run(["logs", "verify"]).stdout
            print("\(sandbox.name): the first up failed only at verify; its log:\n\(log.suffix(3000))\nup again in a minute")
            try await Task.sleep(for: .seconds(60))
            up = try await sandbox.run(["up"])
        }
        return up
    }

    /// The program a unit's supervisor runs on `node`, by the supervisor's own record.
    static func child(_ unit: String, on node: ClusterInventory.Node, _ nodes: SandboxNodes) async throws -> String {
        try await nodes.run("cat /run/openrc/options/\(unit)/child_pid 2>/dev/null", on: node).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops every producer unit (SIGTERM: each flushes and writes its final counts) and waits
    /// until the processor has stored everything the broker holds. Returns when the stored count
    /// was last seen rising (sampled every 3 s).
    @discardableResult
    static func drain(_ nodes: SandboxNodes) async throws -> ContinuousClock.Instant {
        for worker in nodes.inventory.workers { _ = try await nodes.run("rc-service pipeline-producer stop", on: worker) }
        // The backlog of a broker outage, read through moto's S3 while the whole suite runs: minutes.
        // The lag gauge can stay above 0 after topics were re-created (offsets committed for the old
        // incarnation), so it is waited for (up to 180 s), not required: the stored count standing
        // still is, and the ledger's checks judge what was stored.
        let start = ContinuousClock.now
        var last = -1
        var rose = start
        var lagDone = false
        while true {
            if !lagDone { lagDone = await nodes.lag() == 0 || ContinuousClock.now - start > .seconds(180) }
            let now = await nodes.stored() ?? -2
            if now != last {
                if now > last { rose = .now }
                last = now
            } else if lagDone {
                return rose
            }
            guard ContinuousClock.now - start < .seconds(300) else { throw StepFailure("the stored count still changed after 300 s (last \(last))") }
            try await Task.sleep(for: .seconds(3))
        }
    }
}
