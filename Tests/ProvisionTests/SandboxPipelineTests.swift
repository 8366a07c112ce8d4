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
}
