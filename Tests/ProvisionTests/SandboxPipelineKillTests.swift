@testable import App
@testable import Engine
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGKILL of a sandbox `up` at three phases, then `resume`: the pipeline converges with one
/// instance each and one process per unit. Serialized like `SandboxPipelineTests`, beside it.
@Suite(.serialized) struct SandboxPipelineKillTests {
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
            #expect(resume.code == 0, "killed at \(phase): \(resume.stderr.suffix(3000))")
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
            #expect(verify.code == 0, "killed at \(phase): \(verify.stdout)")
            let down = try await sandbox.run(["down"])
            #expect(down.code == 0, "killed at \(phase): \(down.stderr.suffix(2000))")
        }
    }
}
