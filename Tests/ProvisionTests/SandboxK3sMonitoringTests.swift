@testable import App
@testable import Engine
import Foundation
@testable import Kube
import TestSupport
import Testing

/// `monitoring` (kube-prometheus-stack, Loki and Alloy as HelmCharts for K3s's Helm controller) on
/// sandbox nodes, against the K3s stand-in (Tests/K3sStandIn), whose kubectl turns an applied
/// HelmChart into a `helm-install-<name>` Job that completes, fails (`helmfail`) or hangs
/// (`helmhang`); nothing here is real K3s, Helm or a real chart. One sandbox up serves every check.
@Suite(.serialized) struct SandboxK3sMonitoringTests {
    static let standin = StandIn.standin
    static let charts = ["kube-prometheus-stack", "loki", "alloy"]

    /// Each install Job the stand-in's Helm controller started (`namespace/chart`), in order.
    static func helmJobs(_ nodes: SandboxNodes) async throws -> [String] {
        try await nodes.run("cat \(standin)/helm-jobs 2>/dev/null", on: nodes.control).stdout.split(separator: "\n").map(String.init)
    }

    /// Replaces `old` by `new` in the tree's file at `path` (which must hold it).
    static func edit(_ tree: URL, _ path: String, _ old: String, _ new: String) throws {
        let file = tree.appendingPathComponent(path)
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text.contains(old), "\(path) holds '\(old)'")
        try text.replacingOccurrences(of: old, with: new).write(to: file, atomically: true, encoding: .utf8)
    }

    /// The monitoring step's last error.
    static func error(_ sandbox: Sandbox) throws -> String {
        try sandbox.store().steps()[MonitoringStep.id]?.lastError ?? ""
    }

    @Test func upInstallsTheChartsThroughHelmJobsBeforePlatformASecondUpAppliesNothingFailedAndHungInstallsNameTheChartAndItsLogAndGrafanasPasswordIsShownOnlyBySecrets() async throws {
        var sandbox = Sandbox(name: "k3sm-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, monitoring: true, monitoringTimeout: "30s")

        // up: every HelmChart applied, each chart's Job awaited, the charts' custom resources after them, then platform.
        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let store = try sandbox.store()
        let steps = try store.steps()
        for id in ["monitoring", "platform", "workloads"] {
            #expect(steps[StepID(id)]?.state == .succeeded, "\(id): \(steps[StepID(id)]?.lastError ?? "missing")")
        }
        let outputs = steps[MonitoringStep.id]?.outputs["charts"]?.items ?? []
        #expect(outputs.sorted() == ["alloy alloy 1.9.0", "kube-prometheus-stack kube-prometheus-stack 88.0.0", "loki loki 18.13.1"], "\(outputs)")
        let nodes = try SandboxNodes(sandbox)
        let held = try await StandIn.held(nodes)
        for chart in Self.charts {
            #expect(held.contains("helmchart/kube-system/\(chart)") && held.contains("job/kube-system/helm-install-\(chart)"), "\(chart): \(held.sorted())")
        }
        for key in ["namespace//monitoring", "secret/monitoring/grafana-admin", "servicemonitor/monitoring/processor", "configmap/monitoring/dashboard-pipeline-slo"] {
            #expect(held.contains(key), "\(key): \(held.sorted())")
        }
        #expect(try await Self.helmJobs(nodes).sorted() == Self.charts.map { "kube-system/\($0)" }.sorted(), "one install Job per chart")
        let order = try await StandIn.appliedLines(nodes)
        let chartApplied = try #require(order.firstIndex(of: "helmchart/kube-system/kube-prometheus-stack"))
        let ruleApplied = try #require(order.firstIndex { $0.hasPrefix("prometheusrule/monitoring/") }, "\(order)")
        #expect(chartApplied < ruleApplied, "the PrometheusRule (a CRD of the chart) is applied after the chart")
        let run = try #require(try store.lastRun()).id
        let monitoringDone = try #require(try store.attempts(of: MonitoringStep.id, run: run).last?.finishedAt)
        let platformStarted = try #require(try store.attempts(of: StepID("platform"), run: run).last?.startedAt)
        #expect(platformStarted >= monitoringDone, "platform runs after monitoring")
        let log = try await K3sSandbox.run(sandbox, ["logs", "monitoring"]).stdout
        for chart in Self.charts { #expect(log.contains("chart \(chart): job helm-install-\(chart) complete"), "\(log.suffix(2000))") }
        var seen = [("up", up.stdout + up.stderr), ("logs monitoring", log)]

        // Unchanged: nothing applied, no install Job started again; a recheck asks the API and is satisfied.
        let applies = try await StandIn.applyCount(nodes)
        let again = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(again.code == 0 && SandboxRuns.applied(again).isEmpty, "\(SandboxRuns.stepOutcomes(again)) \(again.stderr.suffix(2000))")
        let recheck = try await K3sSandbox.run(sandbox, ["up", "--recheck", "--json"])
        #expect(recheck.code == 0 && SandboxRuns.applied(recheck).isEmpty, "\(SandboxRuns.stepOutcomes(recheck)) \(recheck.stderr.suffix(2000))")
        #expect(try await StandIn.applyCount(nodes) == applies)
        #expect(try await Self.helmJobs(nodes).count == 3)
        seen += [("again", again.stdout + again.stderr), ("recheck", recheck.stdout + recheck.stderr)]

        // Grafana's password: generated (not admin), 0600 on the node, the Secret the chart's values name, shown by `secrets grafana`.
        let shown = try await K3sSandbox.run(sandbox, ["secrets", "grafana"])
        #expect(shown.code == 0, "\(shown.stderr)")
        let lines = shown.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "user: admin" && lines.count == 2, "\(lines.count) lines")
        let password = String(lines.last?.dropFirst("password: ".count) ?? "")
        #expect(password.count == 32 && password.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } && password != "admin")
        let json = try await K3sSandbox.run(sandbox, ["secrets", "grafana", "--json"])
        let credential = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
        #expect(credential == ["user": "admin", "password": password])
        let onNode = try await nodes.run("cat \(GrafanaAdmin.passwordFile)", on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(onNode == password)
        let modes = try await nodes.run("stat -c %a \(GrafanaAdmin.passwordFile) \(GrafanaAdmin.secretFile)", on: nodes.control).stdout
        #expect(modes.split(separator: "\n") == ["600", "600"], "\(modes)")
        let secretHeld = try await nodes.run("grep -c '\"admin-password\": \"\(password)\"' \(Self.standin)/objects.json", on: nodes.control).stdout
        #expect(secretHeld.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "the Secret monitoring/grafana-admin holds it")
        let values = try String(contentsOf: tree.appendingPathComponent("base/monitoring/charts/kube-prometheus-stack.yaml"), encoding: .utf8)
        #expect(values.contains("existingSecret: grafana-admin") && !values.contains("adminPassword"), "no password in the chart's values")
        let unknown = try await K3sSandbox.run(sandbox, ["secrets", "mongodb"])
        #expect(unknown.code == 2 && unknown.stderr.contains("known: grafana"), "\(unknown.stderr)")

        // A chart whose install fails (its new Job's pod errs): the step fails at once, naming the chart and quoting the Job's log.
        try await StandIn.fault("helmfail loki", nodes)
        try Self.edit(tree, "base/monitoring/charts/loki.yaml", "retention_period: 168h", "retention_period: 167h")
        var started = ContinuousClock.now
        let failed = try await K3sSandbox.run(sandbox, ["up"])
        var took = ContinuousClock.now - started
        #expect(failed.code == 1, "\(failed.stderr.suffix(2000))")
        #expect(took < .seconds(30), "fails at once, not at the 30 s deadline: \(took)")
        var error = try Self.error(sandbox)
        for text in ["chart loki (HelmChart kube-system/loki: loki 18.13.1", "failed to install", "pod kube-system/helm-install-loki-",
                     "k3s kubectl logs job/helm-install-loki -n kube-system --tail=20",
                     "Error: INSTALLATION FAILED: chart \"loki\" version \"18.13.1\" not found", "then run 'provision up'"] {
            #expect(error.contains(text), "no '\(text)' in \(error)")
        }
        #expect(failed.stderr.contains("✗ monitoring: chart loki") && failed.stderr.contains("failed to install: Error: INSTALLATION FAILED"),
                "the summary line names the chart and helm's error: \(failed.stderr.suffix(2000))")
        #expect(try await Self.helmJobs(nodes).suffix(1) == ["kube-system/loki"], "only loki's changed spec started a Job")
        seen.append(("helmfail", failed.stdout + failed.stderr))

        // Loki fixed: its own up installs it (a loaded machine may take longer than the hang case's 8 s deadline).
        try await StandIn.fault("", nodes)
        try Self.edit(tree, "base/monitoring/charts/loki.yaml", "retention_period: 167h", "retention_period: 168h")
        let lokiFixed = try await K3sSandbox.run(sandbox, ["up"])
        #expect(lokiFixed.code == 0, "\(lokiFixed.stderr.suffix(2000))")
        seen.append(("loki fixed", lokiFixed.stdout + lokiFixed.stderr))

        // A chart whose install never completes: the step fails at its own deadline with the Job's state and log.
        try await StandIn.fault("helmhang alloy", nodes)
        try Self.edit(tree, "base/monitoring/charts/alloy.yaml", "requests: {cpu: 50m, memory: 96Mi}", "requests: {cpu: 60m, memory: 96Mi}")
        K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, monitoring: true, monitoringTimeout: "8s")
        started = ContinuousClock.now
        let hung = try await K3sSandbox.run(sandbox, ["up"])
        took = ContinuousClock.now - started
        #expect(hung.code == 1, "\(hung.stderr.suffix(2000))")
        #expect(took >= .seconds(8) && took < .seconds(60), "\(took)")
        error = try Self.error(sandbox)
        for text in ["were not installed within 8", "k3s.monitoring_timeout", "chart alloy (HelmChart kube-system/alloy", "job helm-install-alloy running",
                     "beginning wait for", "chart loki: installed", "chart kube-prometheus-stack: installed", "raise k3s.monitoring_timeout"] {
            #expect(error.contains(text), "no '\(text)' in \(error)")
        }
        seen.append(("helmhang", hung.stdout + hung.stderr))

        // Fixed: the next up installs alloy's new spec and goes on.
        try await StandIn.fault("", nodes)
        try Self.edit(tree, "base/monitoring/charts/alloy.yaml", "requests: {cpu: 60m, memory: 96Mi}", "requests: {cpu: 50m, memory: 96Mi}")
        K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, monitoring: true, monitoringTimeout: "30s")
        let healed = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(healed.code == 0, "\(healed.failure)")
        #expect(try store.steps()[MonitoringStep.id]?.state == .succeeded)
        #expect(try await Self.helmJobs(nodes).count == 7, "3 + loki failed + loki fixed + alloy hung + alloy fixed")
        seen.append(("healed", healed.stdout + healed.stderr))

        // The password is in no output, log, event or file under state/.
        let status = try await K3sSandbox.run(sandbox, ["status", "--json"])
        seen.append(("status --json", status.stdout + status.stderr))
        for id in ["monitoring", "platform"] { seen.append(("logs \(id)", try await K3sSandbox.run(sandbox, ["logs", id]).stdout)) }
        let leaked = try K3sSandbox.leaks(of: password, in: sandbox, outputs: seen)
        #expect(leaked.isEmpty, "Grafana's password leaked: \(leaked)")

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
