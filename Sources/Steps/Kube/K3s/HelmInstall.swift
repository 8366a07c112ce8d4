import Foundation

/// How far K3s's Helm controller got with one HelmChart, judged from what the API answers: the
/// HelmChart (`status.conditions` JobCreated / Failed, set by helm-controller), its Job
/// `helm-install-<name>` in the HelmChart's namespace and that Job's pods.
///
/// The Job's pods run with RestartPolicy OnFailure and the controller retries a failing install up
/// to the HelmChart's `backOffLimit` before the Job (and the HelmChart) say Failed: a pod that
/// exited non-zero or waits in CrashLoopBackOff is a retry under way (on a new cluster the first
/// try often fails on DNS or the chart repository), pending with its error, not a failure. Only a
/// Failed Job or HelmChart fails the install; the caller's deadline ends a retry that never succeeds.
package enum HelmInstall: Equatable, Sendable {
    /// The Job completed.
    case installed
    /// Still under way; why.
    case pending(String)
    /// The install failed; why (the Job's or pod's state).
    case failed(String)

    /// The Job the Helm controller runs for `chart`.
    static func jobName(_ chart: String) -> String { "helm-install-\(chart)" }

    /// Judges one chart.
    /// - Parameters:
    ///   - chart: the HelmChart as the API answers it (nil when it does not exist).
    ///   - job: its Job (nil when there is none).
    ///   - pods: pods of the namespace; those of `job` are picked by owner (or the `job-name` label).
    ///   - replacedJob: the uid of the Job that existed before this apply changed the chart's spec:
    ///     that Job is for the old spec, so it counts as pending until the controller replaces it.
    static func judge(chart: KubeHelmChart?, job: KubeWorkload?, pods: [KubePod], replacedJob: String?) -> HelmInstall {
        guard let chart else { return .pending("the HelmChart does not exist yet") }
        let name = chart.metadata?.name ?? ""
        if let failed = chart.status?.conditions?.first(where: { $0.type == "Failed" && $0.status == "True" }) {
            return .failed("the HelmChart's condition Failed is True (\(failed.reason ?? "no reason"): \(failed.message ?? ""))"
                           + (job.flatMap { newestPodProblem(pods, of: $0) }.map { "; \($0)" } ?? ""))
        }
        guard let job else { return .pending("job \(jobName(name)) not created yet") }
        if let replacedJob, !replacedJob.isEmpty, job.metadata?.uid ?? "" == replacedJob {
            return .pending("waiting for the Helm controller to replace job \(jobName(name)) (the chart changed)")
        }
        if job.condition("Complete") != nil || job.status?.succeeded ?? 0 > 0 { return .installed }
        let podProblem = newestPodProblem(pods, of: job)
        if let failed = job.condition("Failed") {
            return .failed("job \(jobName(name)) failed (\(failed.reason ?? "Failed"): \(failed.message ?? ""))"
                           + (podProblem.map { "; \($0)" } ?? ""))
        }
        if let podProblem {
            return .pending("job \(jobName(name)) retrying after an error (the Helm controller retries up to the HelmChart's backOffLimit): \(podProblem)")
        }
        let active = job.status?.active ?? 0
        return .pending(active > 0 ? "job \(jobName(name)) running (\(active) active pod)" : "job \(jobName(name)) has not started a pod yet")
    }

    /// The error of `job`'s newest pod, or nil. Only the newest: the Job keeps its failed pods
    /// while the controller retries, and a retry that runs or is about to succeed is what counts.
    static func newestPodProblem(_ pods: [KubePod], of job: KubeWorkload) -> String? {
        let newest = pods.filter { belongs($0, to: job) }.max { ($0.metadata?.creationTimestamp ?? "") < ($1.metadata?.creationTimestamp ?? "") }
        return newest.flatMap(problem)
    }

    /// How often the containers of `job`'s pods restarted (failed tries: the Job's pods restart OnFailure).
    static func restarts(_ pods: [KubePod], of job: KubeWorkload) -> Int {
        pods.filter { belongs($0, to: job) }.reduce(0) { total, pod in
            total + (pod.status?.containerStatuses ?? []).reduce(0) { $0 + ($1.restartCount ?? 0) }
        }
    }

    /// Whether `pod` is one of `job`'s: owned by its uid, or (no owner recorded) labelled with its name.
    static func belongs(_ pod: KubePod, to job: KubeWorkload) -> Bool {
        if let owner = pod.metadata?.ownerReferences?.first(where: { $0.kind == "Job" }) {
            if let uid = owner.uid, let jobUID = job.metadata?.uid { return uid == jobUID }
            return owner.name == job.metadata?.name
        }
        guard let name = job.metadata?.name else { return false }
        let labels = pod.metadata?.labels ?? [:]
        return labels["job-name"] == name || labels["batch.kubernetes.io/job-name"] == name
    }

    /// Why a Job's pod is in error ("pod kube-system/helm-install-loki-x7k2p: Error, exit code 1, restarts 1");
    /// nil while it runs or is starting.
    static func problem(_ pod: KubePod) -> String? {
        let name = "pod \(pod.metadata?.namespace ?? "")/\(pod.metadata?.name ?? "")"
        if pod.status?.phase == "Failed" {
            return "\(name): Failed\(pod.status?.reason.map { " (\($0))" } ?? "")"
        }
        for container in pod.status?.containerStatuses ?? [] {
            let restarts = container.restartCount ?? 0
            for terminated in [container.state?.terminated, container.lastState?.terminated].compactMap({ $0 }) {
                let code = terminated.exitCode ?? 0
                if code != 0 {
                    return "\(name): \(terminated.reason ?? "Error"), exit code \(code), restarts \(restarts)"
                }
            }
            if let waiting = container.state?.waiting, let reason = waiting.reason,
               ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "RunContainerError"].contains(reason) {
                return "\(name): \(reason)\(waiting.message.map { " (\($0))" } ?? ""), restarts \(restarts)"
            }
        }
        return nil
    }

    /// Whether the live HelmChart's spec already holds every field `rendered` sets, with the same
    /// values (the API may add defaults): when it does not, applying `rendered` makes the Helm
    /// controller replace the chart's Job.
    static func specMatches(live: KubeHelmChart?, rendered: KubeHelmChart) -> Bool {
        guard let live, case .object(let renderedSpec)? = rendered.spec else { return live != nil && rendered.spec == nil }
        return renderedSpec.allSatisfy { key, value in live.spec?[key] == value }
    }
}
