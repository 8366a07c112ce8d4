import Engine
import Foundation
import Infra
import NodeRuntime

/// `monitoring`: the monitoring namespace of the k8s/ tree (its Namespace, NetworkPolicies,
/// dashboards, ServiceMonitor and PrometheusRule) and the HelmCharts of kube-prometheus-stack, Loki
/// and Alloy that K3s's own Helm controller installs (no helm here), rendered from the plan's
/// overlay and applied server-side on the control plane like `platform` and `workloads`, with the
/// generated Secret `monitoring/grafana-admin` (GrafanaAdmin). The objects that need the charts'
/// CRDs (monitoring.coreos.com) are applied once the charts are installed.
///
/// K3s's Helm controller retries a failing install up to the chart's `backOffLimit` before it says
/// Failed, so the step watches each chart itself: the HelmChart's conditions, its Job
/// `helm-install-<name>` and the Job's pods. A complete Job is installed; a Job pod in
/// error is a retry under way (its error is shown while the step waits), a failed Job or the
/// HelmChart's condition Failed fail the step at once, and a chart still installing (or retrying) at
/// `k3s.monitoring_timeout` (counted from the step's start) fails it then; either error names the
/// chart, the Job's state and its last log lines (the Job's `logs`, last 20 lines).
/// A chart whose spec this apply changes is judged by the Job the controller makes for the new
/// spec, never by the old one. Pruning and the record in the store are as DeployStep's (key `monitoring`).
/// `check`: the rendered digest is the recorded one, every recorded object exists and every chart's
/// Job is complete. No teardown, as DeployStep: the objects go with the server or the machines.
package struct MonitoringStep: Step {
    package static let id = StepID("monitoring")
    /// Where the rendered manifests are placed on the control plane.
    static var file: String { DeployStep.directory + "/monitoring.json" }
    /// The objects applied after the charts (their CRDs come with kube-prometheus-stack).
    static var lateFile: String { DeployStep.directory + "/monitoring-resources.json" }
    /// How many log lines of a chart's Job an error quotes.
    static let logLines = 20

    let settings: K3sSettings
    /// The k8s/ tree, resolved.
    let tree: URL
    /// A digest of every file under `tree`: an edited manifest makes the step run again.
    let treeDigest: String

    package init(settings: K3sSettings, tree: URL) {
        self.settings = settings
        self.tree = tree
        treeDigest = DeployStep.digest(of: tree)
    }

    package var id: StepID { Self.id }
    package var dependencies: [StepID] { [TerraformApplyStep.id, ClusterReadyStep.id] }
    package var inputs: String {
        "\(settings.inputs) manifests=\(tree.path) overlay=\(settings.spec.overlay) tree=\(treeDigest) monitoring timeout=\(settings.spec.monitoringTimeout.formatted)"
    }
    package var planKeys: [String: String] {
        settings.planKeys.merging(settings.spec.planKeys(["manifests", "overlay", "monitoring_timeout"])) { $1 }
    }
    package var hasCheck: Bool { true }

    /// The control plane's share of the inventory: a new worker changes nothing here.
    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        RuntimeAccess.scope(upstream) { inventory in [inventory.controlPlane?.name ?? ""] }.filter { id, _ in id != ClusterReadyStep.id }
    }

    // MARK: rendering and the record

    private var overlay: URL { tree.appendingPathComponent("overlays").appendingPathComponent(settings.spec.overlay) }

    /// The overlay rendered here, the monitoring step's objects selected.
    func render(_ context: StepContext) async throws -> Manifests {
        let manifests = try Manifests.selectMonitoring(try await AppliedSet.render(overlay, context))
        guard !manifests.helmCharts.isEmpty else {
            throw StepFailure("\(overlay.path) renders no HelmChart (helm.cattle.io/v1) for the monitoring step; check k3s.manifests and k3s.overlay, "
                              + "or set k3s.monitoring: false", retryable: false)
        }
        return manifests
    }

    private func recorded(_ context: StepContext) -> AppliedSet.Record? { AppliedSet(step: id).recorded(context) }

    private func record(_ record: AppliedSet.Record, _ context: StepContext) throws { try AppliedSet(step: id).record(record, context) }

    private func outputs(_ manifests: Manifests) -> StepOutputs {
        ["namespace": .string(Manifests.monitoringNamespace), "digest": .string(manifests.digest),
         "objects": .list(manifests.ids.map { .string($0.description) }),
         "charts": .list(manifests.helmCharts.map { chart in
             .string("\(chart.id.name) \(chart.object.spec("chart") ?? "") \(chart.object.spec("version") ?? "")")
         })]
    }

    /// What of `objects` the cluster does not have; "" when it has them all.
    // MARK: the charts as the API answers

    /// The HelmCharts, Jobs and pods of the charts' namespaces.
    struct Live {
        var charts: [String: KubeHelmChart] = [:]
        var jobs: [String: KubeWorkload] = [:]
        var pods: [String: [KubePod]] = [:]
        /// What could not be read.
        var problems: [String] = []

        func chart(_ id: KubeObject) -> KubeHelmChart? { charts["\(id.namespace)/\(id.name)"] }
        func job(_ id: KubeObject) -> KubeWorkload? { jobs["\(id.namespace)/\(HelmInstall.jobName(id.name))"] }

        func judge(_ id: KubeObject, replacedJob: String?) -> HelmInstall {
            if !problems.isEmpty { return .pending(problems.joined(separator: "; ")) }
            return HelmInstall.judge(chart: chart(id), job: job(id), pods: pods[id.namespace] ?? [], replacedJob: replacedJob)
        }
    }

    private func live(_ charts: [KubeObject], on control: K3sNode, until deadline: ContinuousClock.Instant? = nil) async throws -> Live {
        var live = Live()
        let kube = control.kube(until: deadline)
        for namespace in Set(charts.map(\.namespace)).sorted() {
            for resource in ["helmcharts.helm.cattle.io", "jobs.batch", "pods"] {
                let result = try await kube.get([resource], namespace: namespace)
                guard result.succeeded else {
                    live.problems.append("\(Kubectl.shown("get \(resource) -n \(namespace)")) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300))")
                    continue
                }
                switch resource {
                case "pods": live.pods[namespace, default: []] += KubeList<KubePod>.decode(result.stdout) ?? []
                case "jobs.batch": for job in KubeList<KubeWorkload>.decode(result.stdout) ?? [] { live.jobs["\(namespace)/\(job.metadata?.name ?? "")"] = job }
                default: for chart in KubeList<KubeHelmChart>.decode(result.stdout) ?? [] { live.charts["\(namespace)/\(chart.metadata?.name ?? "")"] = chart }
                }
            }
        }
        return live
    }

    /// The last log lines of `chart`'s Job, indented for an error, and helm's own error line among them.
    private func jobLog(_ chart: KubeObject, on control: K3sNode) async throws -> (text: String, error: String?) {
        let job = "job/\(HelmInstall.jobName(chart.name))"
        let command = Kubectl.commandLine(["logs", job, "-n", chart.namespace, "--tail=\(Self.logLines)"])
        let result = try await control.kube().logs(job, namespace: chart.namespace, tail: Self.logLines)
        let output = (result.succeeded ? result.stdout : result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = output.isEmpty ? ["(no output)"] : output.split(separator: "\n").suffix(Self.logLines).map(String.init)
        let text = "    last log lines of job \(chart.namespace)/\(HelmInstall.jobName(chart.name)) (\(command)):\n" + lines.map { "      \($0)" }.joined(separator: "\n")
        return (text, lines.last { $0.hasPrefix("Error:") })
    }

    private func describe(_ chart: (id: KubeObject, object: KubeHelmChart)) -> String {
        let helm = chart.object
        return "chart \(chart.id.name) (HelmChart \(chart.id.namespace)/\(chart.id.name): \(helm.spec("chart") ?? "") \(helm.spec("version") ?? "") from \(helm.spec("repo") ?? "the chart's repository"))"
    }

    /// Waits until every chart's Job completed; fails at once on a failed install, or at `deadline`.
    /// - Parameter replaced: per chart, the uid of the Job this apply made stale ("" when none existed).
    private func waitForCharts(_ manifests: Manifests, replaced: [KubeObject: String], deadline: ContinuousClock.Instant,
                               on control: K3sNode, context: StepContext) async throws {
        let charts = manifests.helmCharts
        var seen: [KubeObject: HelmInstall] = [:]
        while true {
            let live = try await live(charts.map { $0.id }, on: control, until: deadline)
            for chart in charts {
                let state = live.judge(chart.id, replacedJob: replaced[chart.id])
                if seen[chart.id] != state {
                    seen[chart.id] = state
                    switch state {
                    case .installed:
                        // A retry that began and ended between two looks shows as its pod's restarts
                        // (the Job's pods restart OnFailure).
                        let failed = live.job(chart.id).map { HelmInstall.restarts(live.pods[chart.id.namespace] ?? [], of: $0) } ?? 0
                        context.log.write("chart \(chart.id.name): job \(HelmInstall.jobName(chart.id.name)) complete"
                                          + (failed > 0 ? " after \(failed) failed \(failed == 1 ? "try" : "tries") (the Helm controller retried)" : ""))
                    case .pending(let why): context.log.write("chart \(chart.id.name): \(why)")
                    case .failed(let why): context.log.write("chart \(chart.id.name): failed: \(why)")
                    }
                }
                if case .failed(let why) = state {
                    let log = try await jobLog(chart.id, on: control)
                    throw StepFailure("\(describe(chart)) failed to install: \(log.error.map { "\($0) (\(why))" } ?? why)\n\(log.text)\n"
                                      + "  fix the cause (the chart's version, repository or values in its HelmChart under \(tree.path)/base/monitoring/charts, "
                                      + "or what its log names), then run 'provision up'; see the controller's attempts with "
                                      + "\(Kubectl.shown("-n \(chart.id.namespace) describe job \(HelmInstall.jobName(chart.id.name))")) on the control plane",
                                      retryable: false)
                }
            }
            if charts.allSatisfy({ seen[$0.id] == .installed }) {
                context.log.write("installed: \(charts.map { $0.id.name }.joined(separator: ", "))")
                return
            }
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .seconds(1))
        }
        var lines: [String] = []
        for chart in charts {
            switch seen[chart.id] ?? .pending("not judged") {
            case .installed: lines.append("  chart \(chart.id.name): installed")
            case .pending(let why), .failed(let why):
                lines.append("  \(describe(chart)): \(why)")
                lines.append(try await jobLog(chart.id, on: control).text)
            }
        }
        throw StepFailure("the monitoring charts were not installed within \(settings.spec.monitoringTimeout.formatted) (k3s.monitoring_timeout):\n"
                          + lines.joined(separator: "\n")
                          + "\n  fix what the job's log shows (a chart repository the control plane cannot reach, an image the nodes cannot pull, "
                          + "pods that cannot be scheduled), or raise k3s.monitoring_timeout, then run 'provision up'",
                          retryable: false)
    }

    // MARK: check

    package func check(_ context: StepContext) async throws -> CheckResult {
        let manifests = try await render(context)
        guard let record = recorded(context), !record.digest.isEmpty else { return .unsatisfied("monitoring has not installed its charts yet") }
        guard record.digest == manifests.digest else { return .unsatisfied("the rendered monitoring manifests changed since the last apply") }
        let control = try settings.access.controlPlane(context)
        let missing = try await AppliedSet.missing(manifests.ids, on: control)
        guard missing.isEmpty else { return .unsatisfied("applied objects are missing: \(missing)") }
        let live = try await live(manifests.helmCharts.map { $0.id }, on: control)
        let problems = manifests.helmCharts.compactMap { chart -> String? in
            let state = live.judge(chart.id, replacedJob: nil)
            switch state {
            case .installed: return nil
            case .pending(let why), .failed(let why): return "chart \(chart.id.name): \(why)"
            }
        }
        return problems.isEmpty ? .satisfied(outputs(manifests)) : .unsatisfied(problems.joined(separator: "; "))
    }

    // MARK: apply

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let deadline = ContinuousClock.now + settings.spec.monitoringTimeout
        let control = try settings.access.controlPlane(context)
        let manifests = try await render(context)
        let last = recorded(context)
        // Another part of the tree changed (the step's inputs cover all of it): nothing to apply here.
        if let last, last.digest == manifests.digest, try await AppliedSet.missing(manifests.ids, on: control).isEmpty {
            context.log.write("the rendered monitoring manifests are as applied last (digest \(manifests.digest.prefix(12))) and all exist: nothing to apply")
            try await waitForCharts(manifests, replaced: [:], deadline: deadline, on: control, context: context)
            return outputs(manifests)
        }
        let previous = last?.ids ?? []
        let stale = Set(previous).subtracting(manifests.ids).sorted()
        context.log.write("rendered \(manifests.objects.count) monitoring objects (\(manifests.helmCharts.count) HelmCharts) from \(overlay.path) (digest \(manifests.digest.prefix(12)))")

        try await GrafanaAdmin.ensure(on: control, context: context)
        // A chart whose spec changes gets a new Job from the controller: the current one is stale.
        let before = try await live(manifests.helmCharts.map { $0.id }, on: control, until: deadline)
        var replaced: [KubeObject: String] = [:]
        for chart in manifests.helmCharts where !HelmInstall.specMatches(live: before.chart(chart.id), rendered: chart.object) {
            replaced[chart.id] = before.job(chart.id)?.metadata?.uid ?? ""
        }
        if !replaced.isEmpty { context.log.write("charts to install or upgrade: \(replaced.keys.map(\.name).sorted().joined(separator: ", "))") }

        let (first, late) = manifests.splitByCRDs
        try await control.put(first.list, at: Self.file, mode: 0o600)
        try record(AppliedSet.Record(digest: "", objects: Set(previous).union(manifests.ids).sorted().map(\.description)), context)
        let applied = try await control.kube(until: deadline).apply([Self.file, GrafanaAdmin.secretFile], what: "applying \(Self.file) server-side")
        context.log.write(applied.stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        try await waitForCharts(manifests, replaced: replaced, deadline: deadline, on: control, context: context)

        if !late.objects.isEmpty {
            try await control.put(late.list, at: Self.lateFile, mode: 0o600)
            let resources = try await control.kube(until: deadline).apply([Self.lateFile],
                                                                             what: "applying \(Self.lateFile) server-side (the charts' custom resources)")
            context.log.write(resources.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        try await AppliedSet.prune(stale, on: control, context: context)
        // The digest only once every chart is installed: after a failure `check` applies the step again.
        try record(AppliedSet.Record(digest: manifests.digest, objects: manifests.ids.map(\.description)), context)
        return outputs(manifests)
    }
}
