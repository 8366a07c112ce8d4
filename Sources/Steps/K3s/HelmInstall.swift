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
enum HelmInstall: Equatable, Sendable {
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
    static func judge(chart: [String: Any]?, job: [String: Any]?, pods: [[String: Any]], replacedJob: String?) -> HelmInstall {
        guard let chart else { return .pending("the HelmChart does not exist yet") }
        let name = (chart["metadata"] as? [String: Any])?["name"] as? String ?? ""
        let conditions = (chart["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
        if let failed = conditions.first(where: { $0["type"] as? String == "Failed" && $0["status"] as? String == "True" }) {
            return .failed("the HelmChart's condition Failed is True (\(failed["reason"] as? String ?? "no reason"): \(failed["message"] as? String ?? ""))"
                           + (job.flatMap { newestPodProblem(pods, of: $0) }.map { "; \($0)" } ?? ""))
        }
        guard let job else { return .pending("job \(jobName(name)) not created yet") }
        let jobMeta = job["metadata"] as? [String: Any] ?? [:]
        let uid = jobMeta["uid"] as? String ?? ""
        if let replacedJob, !replacedJob.isEmpty, uid == replacedJob {
            return .pending("waiting for the Helm controller to replace job \(jobName(name)) (the chart changed)")
        }
        let status = job["status"] as? [String: Any] ?? [:]
        let jobConditions = status["conditions"] as? [[String: Any]] ?? []
        func condition(_ type: String) -> [String: Any]? {
            jobConditions.first { $0["type"] as? String == type && $0["status"] as? String == "True" }
        }
        if condition("Complete") != nil || (status["succeeded"] as? Int ?? 0) > 0 { return .installed }
        let podProblem = newestPodProblem(pods, of: job)
        if let failed = condition("Failed") {
            return .failed("job \(jobName(name)) failed (\(failed["reason"] as? String ?? "Failed"): \(failed["message"] as? String ?? ""))"
                           + (podProblem.map { "; \($0)" } ?? ""))
        }
        if let podProblem {
            return .pending("job \(jobName(name)) retrying after an error (the Helm controller retries up to the HelmChart's backOffLimit): \(podProblem)")
        }
        let active = status["active"] as? Int ?? 0
        return .pending(active > 0 ? "job \(jobName(name)) running (\(active) active pod)" : "job \(jobName(name)) has not started a pod yet")
    }

    /// The error of `job`'s newest pod, or nil. Only the newest: the Job keeps its failed pods
    /// while the controller retries, and a retry that runs or is about to succeed is what counts.
    static func newestPodProblem(_ pods: [[String: Any]], of job: [String: Any]) -> String? {
        let newest = pods.filter { belongs($0, to: job) }.max {
            ((($0["metadata"] as? [String: Any])?["creationTimestamp"] as? String) ?? "") < ((($1["metadata"] as? [String: Any])?["creationTimestamp"] as? String) ?? "")
        }
        return newest.flatMap(problem)
    }

    /// How often the containers of `job`'s pods restarted (failed tries: the Job's pods restart OnFailure).
    static func restarts(_ pods: [[String: Any]], of job: [String: Any]) -> Int {
        pods.filter { belongs($0, to: job) }.reduce(0) { total, pod in
            total + (((pod["status"] as? [String: Any])?["containerStatuses"] as? [[String: Any]]) ?? []).reduce(0) { $0 + ($1["restartCount"] as? Int ?? 0) }
        }
    }

    /// Whether `pod` is one of `job`'s: owned by its uid, or (no owner recorded) labelled with its name.
    static func belongs(_ pod: [String: Any], to job: [String: Any]) -> Bool {
        let jobMeta = job["metadata"] as? [String: Any] ?? [:]
        let meta = pod["metadata"] as? [String: Any] ?? [:]
        if let owners = meta["ownerReferences"] as? [[String: Any]], let owner = owners.first(where: { $0["kind"] as? String == "Job" }) {
            if let uid = owner["uid"] as? String, let jobUID = jobMeta["uid"] as? String { return uid == jobUID }
            return owner["name"] as? String == jobMeta["name"] as? String
        }
        let labels = meta["labels"] as? [String: Any] ?? [:]
        let name = jobMeta["name"] as? String
        return name != nil && (labels["job-name"] as? String == name || labels["batch.kubernetes.io/job-name"] as? String == name)
    }

    /// Why a Job's pod is in error ("pod kube-system/helm-install-loki-x7k2p: Error, exit code 1, restarts 1");
    /// nil while it runs or is starting.
    static func problem(_ pod: [String: Any]) -> String? {
        let meta = pod["metadata"] as? [String: Any] ?? [:]
        let name = "pod \(meta["namespace"] as? String ?? "")/\(meta["name"] as? String ?? "")"
        let status = pod["status"] as? [String: Any] ?? [:]
        if status["phase"] as? String == "Failed" {
            return "\(name): Failed\((status["reason"] as? String).map { " (\($0))" } ?? "")"
        }
        for container in status["containerStatuses"] as? [[String: Any]] ?? [] {
            let state = container["state"] as? [String: Any] ?? [:]
            let last = container["lastState"] as? [String: Any] ?? [:]
            let restarts = container["restartCount"] as? Int ?? 0
            for terminated in [state["terminated"], last["terminated"]].compactMap({ $0 as? [String: Any] }) {
                let code = terminated["exitCode"] as? Int ?? 0
                if code != 0 {
                    return "\(name): \(terminated["reason"] as? String ?? "Error"), exit code \(code), restarts \(restarts)"
                }
            }
            if let waiting = state["waiting"] as? [String: Any], let reason = waiting["reason"] as? String,
               ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "RunContainerError"].contains(reason) {
                return "\(name): \(reason)\((waiting["message"] as? String).map { " (\($0))" } ?? ""), restarts \(restarts)"
            }
        }
        return nil
    }

    /// Whether the live HelmChart's spec already holds every field `rendered` sets, with the same
    /// values (the API may add defaults): when it does not, applying `rendered` makes the Helm
    /// controller replace the chart's Job.
    static func specMatches(live: [String: Any]?, rendered: [String: Any]) -> Bool {
        guard let live else { return false }
        let liveSpec = live["spec"] as? [String: Any] ?? [:]
        let renderedSpec = rendered["spec"] as? [String: Any] ?? [:]
        return renderedSpec.allSatisfy { key, value in
            guard let other = liveSpec[key] else { return false }
            return canonical(value) == canonical(other)
        }
    }

    /// `value` as JSON with sorted keys ("" when it is not JSON).
    private static func canonical(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .fragmentsAllowed]) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
