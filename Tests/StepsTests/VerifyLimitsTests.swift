@testable import App
import Foundation
@testable import NodeRuntime
@testable import PlanLanguage
import Testing
@testable import Verification

#if canImport(Glibc)
import Glibc
#endif

/// What fails `verify` and what it only shows: a critical alert firing in a real Prometheus fails
/// the alert check, a firing warning is shown and passes; the latency limit comes from the plan.
@Suite struct VerifyLimitsTests {
    /// A real Prometheus on a free loopback port evaluating `rules` every second, run while `body` runs.
    static func withPrometheus(rules: String, _ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("verify-limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try rules.write(to: directory.appendingPathComponent("rules.yaml"), atomically: true, encoding: .utf8)
        try """
            global: {evaluation_interval: 1s}
            rule_files: ['\(directory.path)/rules.yaml']

            """.write(to: directory.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        let port = Int.random(in: 20000...60000)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=\(directory.path)/prometheus.yml", "--storage.tsdb.path=\(directory.path)/data",
                                "--web.listen-address=127.0.0.1:\(port)"]
        prometheus.standardOutput = FileHandle.nullDevice
        prometheus.standardError = FileHandle.nullDevice
        try prometheus.run()
        defer { kill(prometheus.processIdentifier, SIGKILL); prometheus.waitUntilExit() }
        try await body("http://127.0.0.1:\(port)")
    }

    static func rule(_ name: String, severity: String, slo: String? = nil) -> String {
        "      - alert: \(name)\n        expr: vector(1)\n        labels: {severity: \(severity)\(slo.map { ", slo: \($0)" } ?? "")}\n"
    }

    /// The alert check once every alert of `names` fires: within 3 minutes (Prometheus starts in a
    /// second or two, but a full test run's start has starved it for a minute).
    static func check(_ prometheus: String, firing names: Set<String>) async throws -> PipelineVerifier.Check {
        let verifier = PipelineVerifier(targets: .init(processor: "http://127.0.0.1:1", prometheus: prometheus, workers: [], nodes: 0, topics: { [:] }), partitions: 3)
        let deadline = ContinuousClock.now + .seconds(180)
        while true {
            let check = await verifier.firingAlerts()
            if names.allSatisfy({ check.seen.contains($0) }) || ContinuousClock.now > deadline { return check }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    @Test func aFiringWarningOrBudgetBurnIsShownAndPassesWhileACriticalAlertFailsTheCheck() async throws {
        try await Self.withPrometheus(rules: "groups:\n  - name: t\n    rules:\n" + Self.rule("ProcessorRestarting", severity: "warning")
                                      + Self.rule("IngestAvailabilityFastBurn", severity: "critical", slo: "ingest_availability")) { url in
            let check = try await Self.check(url, firing: ["ProcessorRestarting", "IngestAvailabilityFastBurn"])
            #expect(check.name == "no critical alert firing")
            #expect(check.ok && check.seen == "IngestAvailabilityFastBurn (critical, error budget), ProcessorRestarting (warning)", "\(check)")
        }
        try await Self.withPrometheus(rules: "groups:\n  - name: t\n    rules:\n" + Self.rule("ProcessorRestarting", severity: "warning")
                                      + Self.rule("FlowStopped", severity: "critical")) { url in
            let check = try await Self.check(url, firing: ["ProcessorRestarting", "FlowStopped"])
            #expect(!check.ok && check.seen == "FlowStopped (critical), ProcessorRestarting (warning)", "\(check)")
        }
    }

    @Test func aPrometheusThatDoesNotAnswerFailsTheAlertCheckSayingSo() async {
        let verifier = PipelineVerifier(targets: .init(processor: "http://127.0.0.1:1", prometheus: "http://127.0.0.1:1", workers: [], nodes: 0, topics: { [:] }), partitions: 3)
        let check = await verifier.firingAlerts()
        #expect(!check.ok && check.seen.hasPrefix("Prometheus did not answer"), "\(check)")
    }

    @Test func theLatencyLimitIsThePlansMaxLatencyElseThirtySecondsWithTheDurableBrokerElseFive() throws {
        let base = "name: p\ntarget: sandbox\nruntime: processes\ncluster: {worker_count: 1}\n"
        var runtime = ProcessesRuntime(pipeline: try PlanLoader.parse(Data(base.utf8), path: "plans/t.yaml").pipeline ?? PipelineSpec(),
                                       programs: .init(), rules: "")
        #expect(runtime.maxLatency == .seconds(5))
        runtime.durableBroker = true
        #expect(runtime.maxLatency == .seconds(30), "the durable broker batches for seconds")
        let loose = try PlanLoader.parse(Data((base + "pipeline:\n  max_latency: 30s\n").utf8), path: "plans/t.yaml")
        runtime.pipeline = try #require(loose.pipeline)
        #expect(runtime.maxLatency == .seconds(30))
        #expect(loose.pipeline?.planKeys(["max_latency"]) == ["pipeline.max_latency": "30.0s"])
        let error = try #require(planError(base + "pipeline:\n  max_latency: 2h\n"))
        #expect(error.line == 6 && error.message.contains("pipeline.max_latency must be between 100ms and 1h, found 120m00s"), "\(error)")
        #expect(planError(base + "pipeline:\n  max_latency: soon\n")?.hint?.contains("like 500ms") == true)
    }

    @Test func verifyNamesItsLatencyLimitAmongItsPlanKeys() {
        var runtime = ProcessesRuntime(pipeline: PipelineSpec(), programs: .init(), rules: "")
        runtime.durableBroker = true
        let step = VerifyStep(runtime: runtime, access: RuntimeAccess(ssh: nil))
        #expect(step.planKeys["pipeline.max_latency"] == "30.0s" && step.inputs.contains("max_latency=30.0s"), "\(step.planKeys) \(step.inputs)")
    }
}
