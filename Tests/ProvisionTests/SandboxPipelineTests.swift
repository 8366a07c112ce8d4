@testable import App
@testable import Engine
import Foundation
import TestSupport
import Testing
@testable import Verification

#if canImport(Glibc)
import Glibc
#endif

/// README command one's pipeline, through the real `provision` binary: a sandbox plan with
/// `runtime: processes` (moto, SSH hosts with OpenRC, Tansu, nx-27017, the workloads, Prometheus,
/// Alertmanager, node-exporter), verified, left alone when nothing changed, repaired where it
/// drifted, and torn down to nothing.
@Suite(.serialized) struct SandboxPipelineTests {
    /// TCP sockets listening on `addresses` (dotted quads), as /proc/net/tcp writes them.
    static func listening(on addresses: [String]) -> [String] {
        let hex = Set(addresses.map { address in
            address.split(separator: ".").reversed().map { String(format: "%02X", Int($0) ?? 0) }.joined()
        })
        // Read to EOF: procfs reports size 0, and a one-shot read gets only the first page, which
        // misses sockets while other tests hold many connections.
        let table = FileHandle(forReadingAtPath: "/proc/net/tcp").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        let lines = table.split(separator: "\n").dropFirst()
        return lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[3] == "0A", let local = fields[1].split(separator: ":").first, hex.contains(String(local)) else { return nil }
            return String(fields[1])
        }
    }

    static func decodeReport(_ json: String) throws -> ReportDocument {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(ReportDocument.self, from: Data(json.utf8))
    }

    /// `provision report` of the last run: a page headless Chromium renders with no console message
    /// and no request, one timeline bar per step of the run, data points in every chart, the
    /// recorded verify table and a row per SLO.
    static func expectReportOfTheRun(_ sandbox: Sandbox, steps: Set<String>) async throws {
        // --until-now: the pipeline starts in the last seconds of `up`, so on a loaded machine the
        // run's own range may hold no rate sample yet; the charts then extend to now.
        let report = try await sandbox.run(["report", "--until-now"])
        #expect(report.code == 0, "\(report.stderr.suffix(2000))")
        let file = sandbox.stateDirectory.appendingPathComponent("report-run-1.html")
        #expect(report.stdout.contains(file.path))
        let page = try await HeadlessChromium(cli: sandbox.cli).render(file)
        #expect(page.png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG was written")
        #expect(page.console.isEmpty, "no console message (error or CSP violation): \(page.console)")
        #expect(page.requests.isEmpty, "the page requested nothing: \(page.requests)")
        let bars = HeadlessChromium.elements("rect", containing: "data-step=", in: page.dom)
        let barSteps = bars.compactMap { $0.components(separatedBy: "data-step=\"").dropFirst().first?.components(separatedBy: "\"").first }
        #expect(bars.count == steps.count && Set(barSteps) == steps, "one bar per step of the run: \(Set(barSteps).symmetricDifference(steps))")
        let charts = page.dom.components(separatedBy: "<svg class=\"chart\"").dropFirst().map { $0.components(separatedBy: "</svg>")[0] }
        #expect(charts.count == 5, "ingest per topic, lag, latency, dead letters, GPU utilisation")
        for chart in charts {
            let title = chart.components(separatedBy: "aria-label=\"").dropFirst().first?.prefix { $0 != "\"" } ?? "?"
            #expect(chart.components(separatedBy: "class=\"point\"").count - 1 > 0, "chart \(title) has data points: \(chart.suffix(300))")
        }
        let json = try await sandbox.run(["report", "--until-now", "--json"])
        let document = try decodeReport(json.stdout)
        #expect(document.verify.count == 12 && document.verify.allSatisfy { $0.ok }, "the verify table the run recorded")
        #expect(document.objectives.count == 3, "\(document.objectives)")
        #expect(document.charts.allSatisfy { $0.hasData }, "\(document.charts.filter { !$0.hasData }.map { "\($0.title): \($0.empty ?? "")" })")
    }

    @Test func upVerifiesTheRunningPipelineASecondUpRestartsNothingARateChangeRestartsOnlyProducersAndDownLeavesNothing() async throws {
        let sandbox = Sandbox(name: "pipe-\(UInt16.random(in: 1000...65000))", workers: 2, pipeline: SandboxRuns.pipeline(rate: 30))
        defer { sandbox.cleanUp() }
        let up = try await sandbox.run(["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        #expect(SandboxRuns.stepOutcomes(up)["verify"] == "applied")
        let verify = try await sandbox.run(["verify", "--json"])
        #expect(verify.code == 0 && !verify.signaled, "\(verify.stdout)\(verify.stderr.suffix(2000))")
        let table = try? JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any]
        #expect(table?["passed"] as? Bool == true)
        #expect((table?["checks"] as? [[String: Any]])?.count == 12)
        try await Self.expectReportOfTheRun(sandbox, steps: Set(SandboxRuns.stepOutcomes(up).keys))

        let nodes = try SandboxNodes(sandbox)
        let addresses = nodes.inventory.nodes.compactMap { $0.ssh?.host }
        #expect(Self.listening(on: addresses).count >= 3 + 6 + 2, "sshd and the services listen on the nodes' addresses")
        let pids = try await nodes.unitPIDs()
        #expect(pids.count == 5 + 3 + 2, "broker, mongodb, processor, prometheus, alertmanager + a node-exporter per node + a producer per worker: \(pids)")
        #expect(pids.values.allSatisfy { !$0.isEmpty })

        let again = try await sandbox.run(["up", "--json"])
        #expect(again.code == 0)
        #expect(SandboxRuns.applied(again).isEmpty, "nothing changed, nothing applied: \(SandboxRuns.stepOutcomes(again))")
        #expect(try await nodes.unitPIDs() == pids, "no unit restarted")

        sandbox.writePlan(workers: 2, pipeline: SandboxRuns.pipeline(rate: 60))
        let faster = try await sandbox.run(["up", "--json"])
        #expect(faster.code == 0, "\(faster.stderr.suffix(2000))")
        #expect(SandboxRuns.applied(faster) == ["service.producer/worker-1", "service.producer/worker-2", "verify"], "\(SandboxRuns.stepOutcomes(faster))")
        let after = try await nodes.unitPIDs()
        for (unit, pid) in pids {
            if unit.hasSuffix("pipeline-producer") { #expect(after[unit] != pid, "\(unit) restarted") } else { #expect(after[unit] == pid, "\(unit) kept its process") }
        }
        await nodes.pool.closeAll()

        let down = try await sandbox.run(["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        let gone = try await sandbox.run(["report", "--run", "1", "--json"])
        #expect(gone.code == 0, "a report without Prometheus still renders: \(gone.stderr)")
        let withoutPrometheus = try Self.decodeReport(gone.stdout)
        #expect(withoutPrometheus.charts.count == 5 && withoutPrometheus.charts.allSatisfy { !$0.hasData && $0.empty != nil },
                "every chart says why it is empty: \(withoutPrometheus.charts.map { $0.empty ?? "-" })")
        #expect(sandbox.processesLeft().isEmpty, "no node, moto or terraform process left")
        #expect(Self.listening(on: addresses).isEmpty, "no port left listening on the nodes' addresses: \(Self.listening(on: addresses))")
        #expect(try sandbox.hosts().isEmpty, "no instance's host is recorded")
    }

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
