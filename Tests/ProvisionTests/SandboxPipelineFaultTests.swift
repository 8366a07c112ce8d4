@testable import App
@testable import Engine
import Foundation
import TestSupport
import Testing
@testable import Verification

#if canImport(Glibc)
import Glibc
#endif

/// README command one's pipeline under faults, through the real `provision` binary: a killed
/// processor, a stopped unit, `up` SIGKILLed at three phases. Split from `SandboxPipelineTests`
/// (its helpers are used from there) so that a full run's sandboxes run in more, shorter chains.
@Suite(.serialized) struct SandboxPipelineFaultTests {
    @Test func aKilledProcessorLosesNothingAndAStoppedUnitIsAuditedAndRestartedAlone() async throws {
        let sandbox = Sandbox(name: "pipk-\(UInt16.random(in: 1000...65000))", workers: 2, pipeline: SandboxRuns.pipeline(rate: 30))
        defer { sandbox.cleanUp() }
        let up = try await sandbox.run(["up"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        let workers = nodes.inventory.workers

        // A counted run: the units' producers stopped, every record so far stored, then each worker
        // produces a known number of events while the processor is SIGKILLed once.
        for worker in workers { _ = try await nodes.run("rc-service pipeline-producer stop", on: worker) }
        try await waitUntil(timeout: .seconds(60), every: .seconds(1)) { await nodes.lag() == 0 }
        try await Task.sleep(for: .seconds(1))
        let start = try #require(await nodes.stored())
        let producers = workers.enumerated().map { index, worker in
            Task {
                try await nodes.run("""
                    KAFKA_BROKERS=\(nodes.address):9092 LD_LIBRARY_PATH=/opt/provision/lib /opt/provision/bin/producer \
                    --count 6000 --rate 1500 --gpus 2 --seed \(700 + index) --node \(worker.name) --source synthetic
                    """, on: worker, timeout: .seconds(120))
            }
        }
        try await Task.sleep(for: .seconds(2))
        let before = try await nodes.unitPIDs()["control-plane/pipeline-processor"]
        _ = try await nodes.run("kill -9 \(before ?? "0")", on: nodes.control)
        var delivered = 0
        for producer in producers {
            let result = try await producer.value
            #expect(result.succeeded, "\(result.stderr)")
            let summary = try JSONSerialization.jsonObject(with: result.standardOutput) as? [String: Any]
            delivered += summary?["delivered"] as? Int ?? 0
        }
        #expect(delivered == 12_000)
        var respawned: String?
        for _ in 0..<40 where respawned == nil || respawned == before {
            respawned = try await nodes.unitPIDs()["control-plane/pipeline-processor"]
            try await Task.sleep(for: .milliseconds(500))
        }
        let log = try await nodes.run("tail -n 20 /var/log/provision/pipeline-processor.log", on: nodes.control).stdout
        #expect(respawned != nil && respawned != before, "the service manager restarted the processor: \(log)")
        try await waitUntil(timeout: .seconds(120), every: .seconds(2)) { (await nodes.stored() ?? 0) >= start + delivered }
        try await Task.sleep(for: .seconds(3))
        #expect(await nodes.stored() == start + delivered, "exactly what the producers delivered: no loss, no duplicate")
        for worker in workers { _ = try await nodes.run("rc-service pipeline-producer start", on: worker) }

        // Stopped for good: the audit names it, and `up` restarts it alone.
        _ = try await nodes.run("rc-service pipeline-processor stop", on: nodes.control)
        let audit = try await sandbox.run(["status", "--audit"])
        #expect(audit.code == 6, "\(audit.stdout)\(audit.stderr)")
        let drifted = audit.stdout.split(separator: "\n").filter { $0.contains("DRIFT") }.map { String($0.split(separator: " ")[0]) }
        #expect(drifted.contains("service.processor"), "\(audit.stdout)")
        #expect(drifted.allSatisfy { $0 == "service.processor" || $0 == "verify" }, "only the processor (and what verify sees of it): \(drifted)")
        let repaired = try await sandbox.run(["up", "--json"])
        #expect(repaired.code == 0, "\(repaired.stdout.split(separator: "\n").filter { $0.contains("verify") }.suffix(3))\(repaired.stderr.suffix(2000))")
        #expect(SandboxRuns.applied(repaired) == ["service.processor", "verify"], "\(SandboxRuns.stepOutcomes(repaired))")
        await nodes.pool.closeAll()
        #expect(try await sandbox.run(["down"]).code == 0)
    }

    @Test func sigkillOfUpAtThreePhasesThenResumeConvergesWithOneInstanceEachAndOneProcessPerUnit() async throws {
        // Killed when terraform is creating, when a node is being waited for, and when the first
        // service is being started.
        // (--json escapes the slash of a fan-out child's id)
        for (index, phase) in ["terraform.apply", "node.ready\\/", "service."].enumerated() {
            let sandbox = Sandbox(name: "pkill\(index)-\(UInt16.random(in: 1000...65000))", workers: 1, pipeline: SandboxRuns.pipeline(rate: 20))
            defer { sandbox.cleanUp() }
            let process = try sandbox.cli.start(["up", "--json", "--plan", sandbox.planPath])
            let started = (try? await waitUntil(timeout: .seconds(180), every: .milliseconds(50)) {
                process.stdout.split(separator: "\n").contains { $0.contains("\"kind\":\"step.started\"") && $0.contains("\"step\":\"\(phase)") }
            }) != nil
            #expect(started, "phase \(phase) never started: \(process.stderr.suffix(1000))")
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500)))
            kill(process.pid, SIGKILL)
            while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }

            #expect(try await sandbox.run(["unlock"]).code == 0)
            let resume = try await sandbox.run(["resume"])
            let resumeLogs = resume.code == 0 ? "" : try await serviceLogs(sandbox)
            #expect(resume.code == 0, "killed at \(phase): \(resume.failure)\(resumeLogs)")
            let instances = try await sandbox.liveInstances()
            #expect(instances.count == 2, "killed at \(phase): no duplicate instance, found \(instances.map(\.id))")
            let nodes = try SandboxNodes(sandbox)
            for node in nodes.inventory.nodes {
                // Per unit: one supervisor and one program, whatever the kill interrupted.
                let counts = try await nodes.run("""
                    for f in /run/supervise-pipeline-*.pid; do u=${f#/run/supervise-}; u=${u%.pid}; \
                    echo "$u $(pgrep -c -f "^supervise-daemon $u ") $(pgrep -P "$(cat "$f")" | wc -l)"; done
                    """, on: node).stdout
                let units = counts.split(separator: "\n").map { $0.split(separator: " ") }
                #expect(units.count == (node.name == nodes.control.name ? 6 : 2), "killed at \(phase), \(node.name): \(counts)")
                for unit in units { #expect(unit.count == 3 && unit[1] == "1" && unit[2] == "1", "killed at \(phase), \(node.name): \(unit)") }
            }
            await nodes.pool.closeAll()
            let verify = try await sandbox.run(["verify"])
            let verifyLogs = verify.code == 0 ? "" : try await serviceLogs(sandbox)
            #expect(verify.code == 0, "killed at \(phase): \(verify.stdout)\(verifyLogs)")
            let down = try await sandbox.run(["down"])
            #expect(down.code == 0, "killed at \(phase): \(down.stderr.suffix(2000))")
        }
    }

    /// The last lines of the broker's, the processor's and worker-1's producer's own logs, for a
    /// failure's message: what the pipeline said while it did not flow.
    private func serviceLogs(_ sandbox: Sandbox) async throws -> String {
        var text = ""
        for id in ["service.broker", "service.processor", "service.producer/worker-1"] {
            let log = try await sandbox.run(["logs", id, "--tail", "25"])
            text += "\n--- \(id) (exit \(log.code)):\n\(log.stdout.suffix(2500))\(log.stderr.suffix(500))"
        }
        return text
    }
}
