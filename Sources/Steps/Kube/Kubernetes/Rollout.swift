import Foundation

/// Whether a Deployment or StatefulSet has rolled out, judged as the `rollout status` command does (a
/// Job: whether it completed, as a wait for condition `complete`), and why its pods are not
/// running when it has not.
package enum Rollout {
    /// What is still missing for `object` (a Deployment, StatefulSet or Job as the API answers it);
    /// nil when it has rolled out.
    static func pending(_ object: KubeWorkload) -> String? {
        let spec = object.spec, status = object.status
        if object.kind == "Job" {  // a Job's status has no observedGeneration
            if object.condition("Complete") != nil { return nil }
            return "\(status?.succeeded ?? 0) of \(spec?.completions ?? 1) completions, \(status?.active ?? 0) pods active"
        }
        let generation = object.metadata?.generation ?? 0
        guard status?.observedGeneration ?? 0 >= generation else { return "waiting for the controller to observe generation \(generation)" }
        let wanted = spec?.replicas ?? 1
        let updated = status?.updatedReplicas ?? 0
        let ready = status?.readyReplicas ?? 0
        let available = status?.availableReplicas ?? 0
        switch object.kind {
        case "Deployment":
            if status?.conditions?.first(where: { $0.type == "Progressing" })?.reason == "ProgressDeadlineExceeded" {
                return "exceeded its progress deadline"
            }
            if updated < wanted { return "\(updated) of \(wanted) updated replicas" }
            let replicas = status?.replicas ?? 0
            if replicas > updated { return "\(replicas - updated) old replicas pending termination" }
            if available < updated { return "\(available) of \(updated) updated replicas available" }
            return nil
        case "StatefulSet":
            if ready < wanted { return "\(ready) of \(wanted) replicas ready" }
            let strategy = spec?.updateStrategy?.type ?? "RollingUpdate"
            if strategy == "RollingUpdate", let update = status?.updateRevision, status?.currentRevision != update {
                return "\(updated) of \(wanted) replicas at revision \(update)"
            }
            return nil
        default:
            return nil
        }
    }

    /// Why `object` (a Job) will never finish: its `Failed` condition's reason and message
    /// (`BackoffLimitExceeded`, `DeadlineExceeded`); nil while it may still complete.
    static func failed(_ object: KubeWorkload) -> String? {
        guard object.kind == "Job", let failed = object.condition("Failed") else { return nil }
        return "failed (\(failed.reason ?? "Failed")): \(failed.message ?? "")"
    }

    /// Why `pod` is not running: "pod app/processor-abc: ImagePullBackOff (Back-off pulling image …)";
    /// nil when it runs and is ready or is only starting. `logs` gives a crash-looping pod's last lines.
    static func problem(_ pod: KubePod, logs: (String) -> String = { _ in "" }) -> String? {
        let name = "pod \(pod.metadata?.namespace ?? "")/\(pod.metadata?.name ?? "")"
        let status = pod.status
        if let scheduled = status?.conditions?.first(where: { $0.type == "PodScheduled" }), scheduled.status == "False" {
            return "\(name): Pending (\(scheduled.reason ?? "not scheduled")): \(scheduled.message ?? "")"
        }
        for container in (status?.initContainerStatuses ?? []) + (status?.containerStatuses ?? []) {
            guard let waiting = container.state?.waiting, let reason = waiting.reason,
                  !["ContainerCreating", "PodInitializing"].contains(reason) else { continue }
            let message = waiting.message.map { " (\($0))" } ?? ""
            var text = "\(name): \(reason)\(message), container \(container.name ?? "")"
            if reason == "CrashLoopBackOff" || reason == "RunContainerError" {
                let exit = container.lastState?.terminated?.exitCode
                text += ", restarts \(container.restartCount ?? 0)\(exit.map { ", last exit code \($0)" } ?? "")"
                let lines = logs(container.name ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                if !lines.isEmpty { text += "; its last log lines:\n" + lines.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n") }
            }
            return text
        }
        return nil
    }

    /// Whether `pod`'s labels match `selector` (`spec.selector`).
    static func matches(_ pod: KubePod, selector: KubeSelector?) -> Bool {
        selector?.matches(pod.metadata?.labels) ?? false
    }
}
