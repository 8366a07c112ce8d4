import Engine
import Foundation
import JSON

/// `provision verify --scale`: proves that the producers' HorizontalPodAutoscaler scales, over the
/// control plane's SSH session with the typed client (`Kubectl`). It reads the producers' RATE (their ConfigMap)
/// and the HPA; raises RATE by `factor` (a merge patch by field manager `provision-verify-scale`);
/// restarts the producers (they read the ConfigMap through `envFrom`, at start only); waits until
/// the HPA's desired replicas rise above where they started and the Deployment has that many ready;
/// restores RATE and restarts them again; waits until desired replicas are back at the start.
///
/// Each of the two waits has half of `timeout`. RATE is restored whatever happens after it was
/// raised (a failure, a timeout, the task cancelled by Ctrl-C): the restore runs in a task of its
/// own, which the cancellation does not reach. It re-applies the ConfigMap as `provision` last
/// applied it (the workloads manifest on the control plane), original RATE in it, server-side with
/// `--force-conflicts`, so the field belongs to `provision` again and the next `provision up` does
/// not conflict with the check's patch; without that file, a merge patch puts the value back.
package struct ScaleCheck: Sendable {
    /// The field manager of the raise.
    static let fieldManager = "provision-verify-scale"

    let control: K3sNode
    /// How much RATE is multiplied by.
    let factor: Double
    /// The bound of both waits together.
    let timeout: Duration
    var namespace = "app"
    var configMap = "producer-config"
    var deployment = "producer"
    var autoscaler = "producer"
    /// How often the HPA and the Deployment are read.
    var poll: Duration = .seconds(1)

    /// A check of scaling by `factor` on `control`, within `timeout`, looking every `poll`.
    package init(control: K3sNode, factor: Double, timeout: Duration, poll: Duration = .seconds(1),
                 onEvent: @escaping @Sendable (ScaleReport.Event) -> Void = { _ in }) {
        self.control = control
        self.factor = factor
        self.timeout = timeout
        self.poll = poll
        self.onEvent = onEvent
    }
    /// Receives each timeline event as it happens.
    let onEvent: @Sendable (ScaleReport.Event) -> Void

    private struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs the check; never throws: a failure is the report's `error`.
    package func run() async -> ScaleReport {
        var report = ScaleReport()
        let started = ContinuousClock.now
        func note(_ text: String) {
            let event = ScaleReport.Event(seconds: Self.seconds(ContinuousClock.now - started), event: text)
            report.timeline.append(event)
            onEvent(event)
        }

        let start: HPAStatus
        let rate: Double
        do {
            start = try await hpa()
            rate = try await currentRate()
        } catch {
            report.error = Self.text(error)
            return report
        }
        guard start.desiredReplicas >= max(1, start.minReplicas) else {
            report.error = "the HPA \(namespace)/\(autoscaler) has not decided its replicas yet (desired \(start.desiredReplicas), min \(start.minReplicas)): "
                + "its controller has not evaluated it; wait a minute (\(Kubectl.shown("-n \(namespace) get hpa \(autoscaler)"))), then run this again"
            return report
        }
        guard start.desiredReplicas < start.maxReplicas else {
            report.error = "the HPA \(namespace)/\(autoscaler) already wants its maximum of \(start.maxReplicas) producers, so a higher rate cannot "
                + "scale it out; wait until it has scaled in (\(Kubectl.shown("-n \(namespace) get hpa \(autoscaler)"))) or raise maxReplicas, then run this again"
            return report
        }
        let original = Self.format(rate)
        let raised = Self.format(rate * factor)
        report.originalRate = original
        report.raisedRate = raised
        report.startReplicas = start.desiredReplicas
        report.peakReplicas = start.desiredReplicas
        report.finalReplicas = start.desiredReplicas
        note("start: rate \(original), desired \(start.desiredReplicas) (min \(start.minReplicas), max \(start.maxReplicas))"
             + (start.cpuUtilization.map { ", cpu \($0)% of request" } ?? ""))

        var raisedAlready = false
        var failure: String?
        do {
            // Set first: a cancellation while the patch is under way may still have changed RATE.
            raisedAlready = true
            try await patchRate(raised)
            note("rate \(original) → \(raised)")
            try await restart()
            note("producers restarted")
            let peak = try await scaleOut(from: start, raised: raised, deadline: ContinuousClock.now + timeout / 2) { report.peakReplicas = max(report.peakReplicas ?? 0, $0); note($1) }
            report.finalReplicas = peak
        } catch {
            failure = Task.isCancelled || error is CancellationError ? "interrupted (Ctrl-C)" : Self.text(error)
        }

        if raisedAlready {
            // A task of its own: a cancelled run still puts the rate back.
            let restored = await Task { [self] in try await restore(original) }.result
            switch restored {
            case .success:
                report.rateRestored = true
                note("rate restored (\(original)), producers restarted")
            case .failure(let error):
                let restoreError = "restoring RATE to \(original) failed: \(Self.text(error)); put it back on the control plane: "
                    + Kubectl.commandLine(["patch", "configmap/\(configMap)", "-n", namespace, "--type=merge", #"--patch={"data":{"RATE":"\#(original)"}}"#]) + " && "
                    + Kubectl.commandLine(["rollout", "restart", "deployment/\(deployment)", "-n", namespace])
                failure = failure.map { "\($0)\n\(restoreError)" } ?? restoreError
            }
        }

        if failure == nil {
            do {
                let final = try await scaleIn(to: start.desiredReplicas, from: report.finalReplicas ?? start.desiredReplicas,
                                              deadline: ContinuousClock.now + timeout / 2) { note($0) }
                report.finalReplicas = final
            } catch {
                failure = Task.isCancelled || error is CancellationError ? "interrupted (Ctrl-C) while waiting for the scale-in; RATE was restored" : Self.text(error)
            }
        }
        report.error = failure
        report.passed = failure == nil
        note(report.passed ? "scaled out to \(report.peakReplicas ?? 0) and back in to \(report.finalReplicas ?? 0)"
             : failure?.hasPrefix("interrupted") == true ? "stopped by Ctrl-C" : "failed")
        return report
    }

    // MARK: the phases

    /// Waits until desired replicas rise above the start and that many are ready; the peak.
    private func scaleOut(from start: HPAStatus, raised: String, deadline: ContinuousClock.Instant,
                          note: (Int, String) -> Void) async throws -> Int {
        var desired = start.desiredReplicas
        var lastReady = -1
        while true {
            let now = try await hpa()
            if now.desiredReplicas != desired {
                note(now.desiredReplicas, "desired \(desired) → \(now.desiredReplicas)")
                desired = now.desiredReplicas
            }
            var readiness: (ready: Int, replicas: Int, pending: String?) = (0, 0, nil)
            if desired > start.desiredReplicas {
                readiness = try await self.readiness()
                if readiness.ready != lastReady && readiness.ready < desired {
                    note(desired, "\(readiness.ready)/\(desired) ready")
                    lastReady = readiness.ready
                }
                if readiness.ready >= desired, readiness.replicas == desired, readiness.pending == nil {
                    note(desired, "\(readiness.ready)/\(desired) ready")
                    return desired
                }
            }
            guard ContinuousClock.now < deadline else {
                if desired > start.desiredReplicas {
                    throw Failure(description: """
                        the HPA \(namespace)/\(autoscaler) asked for \(desired) producers after RATE went to \(raised), but \(readiness.ready) of them were ready \
                        within \(Self.seconds(timeout / 2))s\(readiness.pending.map { " (\($0))" } ?? ""):
                        \(try await podProblems())
                          its conditions:
                        \(now.conditionLines())
                          check that the nodes have room for more producers (\(Kubectl.shown("-n \(namespace) get pods")), \(Kubectl.shown("describe nodes")))
                        """)
                }
                throw Failure(description: """
                    the HPA \(namespace)/\(autoscaler) did not scale out within \(Self.seconds(timeout / 2))s of RATE going to \(raised): \
                    desired replicas stayed \(desired) (min \(now.minReplicas), max \(now.maxReplicas))\(now.cpuUtilization.map { ", cpu \($0)% of request" } ?? "")
                      its conditions:
                    \(now.conditionLines())
                      check that metrics-server runs in kube-system (\(Kubectl.shown("-n kube-system get deployment metrics-server")), \
                    \(Kubectl.shown("top pods -n \(namespace)"))) and that the producers' containers have CPU requests (the HPA's target is a share of them); \
                    a longer --scale-timeout gives it more time
                    """)
            }
            try await Task.sleep(for: poll)
        }
    }

    /// Waits until desired replicas are back at `target`; the final value.
    private func scaleIn(to target: Int, from peak: Int, deadline: ContinuousClock.Instant, note: (String) -> Void) async throws -> Int {
        var desired = peak
        while true {
            let now = try await hpa()
            if now.desiredReplicas != desired {
                note("desired \(desired) → \(now.desiredReplicas)")
                desired = now.desiredReplicas
            }
            if desired <= target { return desired }
            guard ContinuousClock.now < deadline else {
                throw Failure(description: """
                    the HPA \(namespace)/\(autoscaler) did not scale back in to \(target) within \(Self.seconds(timeout / 2))s of RATE being restored: \
                    desired replicas are \(desired)\(now.cpuUtilization.map { ", cpu \($0)% of request" } ?? "")
                      its conditions:
                    \(now.conditionLines())
                      its scale-down stabilization window (spec.behavior.scaleDown.stabilizationWindowSeconds) must fit in half of --scale-timeout; \
                    check it with \(Kubectl.shown("-n \(namespace) describe hpa \(autoscaler)"))
                    """)
            }
            try await Task.sleep(for: poll)
        }
    }

    /// Puts RATE back (see the type's comment) and restarts the producers.
    private func restore(_ rate: String) async throws {
        let manifest = try await control.read("\(DeployStep.directory)/\(DeployStep.Part.workloads.rawValue).json")
        if let object = Self.configMap(configMap, in: Data(manifest.utf8), rate: rate) {
            let file = "\(DeployStep.directory)/verify-scale-restore.json"
            try await control.put(object, at: file, mode: 0o600)
            try await control.kube().apply([file], forceConflicts: true, what: "re-applying configmap \(namespace)/\(configMap) with RATE \(rate)",
                                              timeout: .seconds(60))
        } else {
            try await patchRate(rate)
        }
        try await restart()
    }

    // MARK: The cluster

    private var hpaReference: String { "horizontalpodautoscaler.autoscaling/\(autoscaler)" }

    private func hpa() async throws -> HPAStatus {
        let result = try await control.kube().get([hpaReference], namespace: namespace)
        guard result.succeeded else {
            throw Failure(description: "cannot read the HPA \(namespace)/\(autoscaler) (\(result.summary)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(400)); "
                          + "deploy the workloads with 'provision up' (k3s.deploy: true)")
        }
        return try HPAStatus(json: Data(result.stdout.utf8))
    }

    private func currentRate() async throws -> Double {
        let result = try await control.kube().get(["configmap/\(configMap)"], namespace: namespace)
        guard result.succeeded else {
            throw Failure(description: "cannot read the ConfigMap \(namespace)/\(configMap) (\(result.summary)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(400)); "
                          + "deploy the workloads with 'provision up'")
        }
        let text = JSONValue.parse(result.stdout)?["data"]?["RATE"]?.string
        guard let text, let rate = Double(text), rate > 0 else {
            throw Failure(description: "the ConfigMap \(namespace)/\(configMap) has no positive RATE (\(text ?? "none")): the producers run as fast as they can "
                          + "or not at all, so there is no rate to raise; set RATE in k8s/base/app/producer-configmap.yaml and run 'provision up'")
        }
        return rate
    }

    private func patchRate(_ rate: String) async throws {
        try await control.kube().mergePatch("configmap/\(configMap)", namespace: namespace, ["data": ["RATE": .string(rate)]], fieldManager: Self.fieldManager,
                                               what: "setting RATE of configmap \(namespace)/\(configMap) to \(rate)")
    }

    /// Restarts the producers with a pod-template annotation unique to this restart (its time and a
    /// random suffix).
    ///
    /// A `rollout restart` writes the time to the second: a restore within the same second as
    /// the raise (a quick Ctrl-C) would change nothing and leave the pods on the raised RATE.
    private func restart() async throws {
        let stamp = "\(Date().formatted(.iso8601)) \(UUID().uuidString.prefix(8).lowercased())"
        let patch: JSONValue = ["spec": ["template": ["metadata": ["annotations": [Self.restartAnnotation: .string(stamp)]]]]]
        try await control.kube().mergePatch("deployment/\(deployment)", namespace: namespace, patch, fieldManager: Self.fieldManager,
                                               what: "restarting deployment \(namespace)/\(deployment)")
    }

    /// The pod-template annotation whose change restarts the producers.
    static let restartAnnotation = "provision.dev/restarted-at"

    /// The Deployment's ready replicas, its wanted replicas, and what its rollout still waits for.
    private func readiness() async throws -> (ready: Int, replicas: Int, pending: String?) {
        let result = try await control.kube().get(["deployment.apps/\(deployment)"], namespace: namespace)
        guard result.succeeded, let object = try? JSONDecoder().decode(KubeWorkload.self, from: Data(result.stdout.utf8)) else {
            throw Failure(description: "cannot read deployment \(namespace)/\(deployment) (\(result.summary)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(400))")
        }
        return (object.status?.readyReplicas ?? 0, object.spec?.replicas ?? 0, Rollout.pending(object))
    }

    /// Why the producers' pods that are not running are not, a line each.
    private func podProblems() async throws -> String {
        let result = try await control.kube().get(["pods"], namespace: namespace)
        let pods = KubeList<KubePod>.decode(result.stdout) ?? []
        let problems = pods.filter { ($0.metadata?.name ?? "").hasPrefix(deployment + "-") }.compactMap { Rollout.problem($0) }
        return problems.isEmpty ? "    (no pod reports a problem: they are still starting)" : problems.map { "    \($0)" }.joined(separator: "\n")
    }

    // MARK: pure helpers

    /// The ConfigMap `name` of a `v1 List` manifest with `data.RATE` set to `rate`, as JSON; nil
    /// when the list has no such ConfigMap.
    static func configMap(_ name: String, in list: Data, rate: String) -> Data? {
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: list) else { return nil }
        let items = object["kind"]?.string == "List" ? object["items"]?.array ?? [] : [object]
        guard var configMap = items.first(where: { $0["kind"]?.string == "ConfigMap" && $0["metadata"]?["name"]?.string == name }) else {
            return nil
        }
        configMap.edit("data") { $0["RATE"] = .string(rate) }
        return configMap.compactData
    }

    /// `200` for 200.0, `12.5` for 12.5.
    static func format(_ rate: Double) -> String {
        rate == rate.rounded() && abs(rate) < 1e15 ? String(Int(rate)) : String(rate)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return ((Double(seconds) + Double(attoseconds) / 1e18) * 10).rounded() / 10
    }

    private static func text(_ error: Error) -> String {
        String(describing: error)
    }
}
