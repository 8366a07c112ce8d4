@testable import App
@testable import Engine
import Foundation
@testable import Kube
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `provision verify --scale` on sandbox nodes (1 server, 1 worker) against the K3s stand-in
/// (Tests/K3sStandIn), whose HPA computes its desired replicas from the producers' RATE and whose
/// Deployment follows them; nothing here is real K3s, a real HPA controller or metrics-server.
@Suite(.serialized) struct SandboxK3sScaleTests {
    /// The producers' RATE in the ConfigMap on the cluster, and the field managers of the object.
    static func rate(_ nodes: SandboxNodes) async throws -> (rate: String, managers: [String]) {
        let text = try await nodes.run("k3s kubectl get -n app configmap/producer-config -o json", on: nodes.control).stdout
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let managed = (object["metadata"] as? [String: Any])?["managedFields"] as? [[String: Any]] ?? []
        return ((object["data"] as? [String: Any])?["RATE"] as? String ?? "", managed.compactMap { $0["manager"] as? String })
    }

    @Test func verifyScaleRaisesTheRateWatchesTheHPAScaleOutAndInRestoresTheRateAlsoOnCtrlCAndFailsWithTheHPAConditionsWithoutMetrics() async throws {
        var sandbox = Sandbox(name: "k3ss-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path)
        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        let before = try await Self.rate(nodes)
        #expect(before.rate == "50", "the plan's pipeline.rate (default 50), which the deploy writes into producer-config")

        // Scales out above the start, every desired producer ready, the rate restored, scales back in.
        let scaled = try await K3sSandbox.run(sandbox, ["verify", "--scale", "--scale-timeout", "240s", "--json"])
        #expect(scaled.code == 0, "\(scaled.failure)")
        let report = try JSONDecoder().decode(ScaleReport.self, from: Data(scaled.stdout.utf8))
        let events = report.timeline.map(\.event)
        #expect(report.passed && report.error == nil, "\(report.error ?? "")")
        #expect(report.originalRate == "50" && report.raisedRate == "500")
        let start = try #require(report.startReplicas)
        let peak = try #require(report.peakReplicas)
        #expect(start == 1 && peak > start, "\(events)")
        #expect(report.finalReplicas == start, "scaled back in: \(events)")
        #expect(report.rateRestored)
        let order = ["rate 50 → 500", "producers restarted", "desired 1 → ", "\(peak)/\(peak) ready", "rate restored (50)", "desired \(peak) → 1"]
        var position = events.startIndex
        for wanted in order {
            let found = events[position...].firstIndex { $0.hasPrefix(wanted) }
            #expect(found != nil, "no '\(wanted)' after event \(position) in \(events)")
            position = (found ?? position) + 1
        }
        #expect(report.timeline.map(\.seconds) == report.timeline.map(\.seconds).sorted(), "the timeline runs forward")
        let after = try await Self.rate(nodes)
        #expect(after.rate == "50", "RATE is back")
        #expect(after.managers == ["provision"], "the ConfigMap re-applied as provision: the next up does not conflict (\(after.managers))")

        // Ctrl-C once RATE is raised: it stops, restores RATE, and exits 130.
        let process = try sandbox.cli.start(["verify", "--scale", "--scale-timeout", "240s", "--plan", sandbox.planPath], environment: [:])
        let deadline = ContinuousClock.now + .seconds(120)
        while process.isRunning, ContinuousClock.now < deadline, try await Self.rate(nodes).rate != "500" {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(process.isRunning, "verify --scale was still running when RATE was raised")
        kill(process.pid, SIGINT)
        while process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(process.exitCode == 130, "\(process.stdout) \(process.stderr)")
        #expect(process.stdout.contains("rate restored (50)"), "\(process.stdout)")
        #expect(process.stderr.contains("interrupted (Ctrl-C)") && process.stdout.contains("stopped by Ctrl-C"), "\(process.stdout) \(process.stderr)")
        #expect(try await Self.rate(nodes).rate == "50", "RATE restored after Ctrl-C")

        // Ctrl-C may have come after the scale-out: let the HPA scale back in before the next case.
        let scaledIn = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < scaledIn {
            let hpa = try await nodes.run("k3s kubectl get hpa producer -n app -o json", on: nodes.control).stdout
            let status = (try? JSONSerialization.jsonObject(with: Data(hpa.utf8)) as? [String: Any])?["status"] as? [String: Any]
            if status?["desiredReplicas"] as? Int == 1 { break }
            try await Task.sleep(for: .milliseconds(500))
        }

        // No metrics: it fails within the bounded wait, naming the HPA's conditions and what to check;
        // RATE is restored anyway. The text form prints the timeline as it goes.
        try await StandIn.fault("nometrics producer", nodes)
        let started = ContinuousClock.now
        let failed = try await K3sSandbox.run(sandbox, ["verify", "--scale", "--scale-timeout", "10s"])
        let took = ContinuousClock.now - started
        #expect(failed.code == 1, "\(failed.stdout.suffix(2000)) \(failed.stderr.suffix(2000))")
        #expect(took < .seconds(90), "bounded by --scale-timeout: \(took)")
        for text in ["did not scale out within 5", "desired replicas stayed 1", "ScalingActive False FailedGetResourceMetric",
                     "no metrics returned from resource metrics API", "metrics-server", "CPU requests"] {
            #expect(failed.stderr.contains(text), "no '\(text)' in \(failed.failure)")
        }
        for text in ["rate 50 → 500", "producers restarted", "rate restored (50)", "failed"] {
            #expect(failed.stdout.contains(text), "the timeline has no '\(text)': \(failed.stdout)")
        }
        #expect(try await Self.rate(nodes).rate == "50", "RATE restored after the failure")
        try await StandIn.fault("", nodes)

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func verifyScaleOnTheProcessesRuntimeSaysItHasNoHPAAndToUseK3s() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["verify", "--scale", "--plan", CLI.repository.appendingPathComponent("plans/sandbox.yaml").path, "--state-dir", cli.stateRoot])
        #expect(result.code == 2, "\(result.stderr)")
        #expect(result.stderr.contains("processes runtime, which has no HorizontalPodAutoscaler"), "\(result.stderr)")
        #expect(result.stderr.contains("runtime: k3s"), "\(result.stderr)")
    }
}
