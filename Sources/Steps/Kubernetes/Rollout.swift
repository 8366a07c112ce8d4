import Foundation

/// Whether a Deployment or StatefulSet has rolled out, judged as `kubectl rollout status` does (a
/// Job: whether it completed, as `kubectl wait --for=condition=complete`), and why its pods are not
/// running when it has not.
enum Rollout {
    /// What is still missing for `object` (a Deployment, StatefulSet or Job as the API answers it);
    /// nil when it has rolled out.
    static func pending(_ object: [String: Any]) -> String? {
        let kind = object["kind"] as? String ?? ""
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        let spec = object["spec"] as? [String: Any] ?? [:]
        let status = object["status"] as? [String: Any] ?? [:]
        if kind == "Job" {  // a Job's status has no observedGeneration
            if condition("Complete", of: object) != nil { return nil }
            let completions = spec["completions"] as? Int ?? 1
            return "\(status["succeeded"] as? Int ?? 0) of \(completions) completions, \(status["active"] as? Int ?? 0) pods active"
        }
        let generation = metadata["generation"] as? Int ?? 0
        let observed = status["observedGeneration"] as? Int ?? 0
        guard observed >= generation else { return "waiting for the controller to observe generation \(generation)" }
        let wanted = spec["replicas"] as? Int ?? 1
        let updated = status["updatedReplicas"] as? Int ?? 0
        let ready = status["readyReplicas"] as? Int ?? 0
        let available = status["availableReplicas"] as? Int ?? 0
        switch kind {
        case "Deployment":
            let conditions = status["conditions"] as? [[String: Any]] ?? []
            if let progressing = conditions.first(where: { $0["type"] as? String == "Progressing" }), progressing["reason"] as? String == "ProgressDeadlineExceeded" {
                return "exceeded its progress deadline"
            }
            if updated < wanted { return "\(updated) of \(wanted) updated replicas" }
            let replicas = status["replicas"] as? Int ?? 0
            if replicas > updated { return "\(replicas - updated) old replicas pending termination" }
            if available < updated { return "\(available) of \(updated) updated replicas available" }
            return nil
        case "StatefulSet":
            if ready < wanted { return "\(ready) of \(wanted) replicas ready" }
            let strategy = (spec["updateStrategy"] as? [String: Any])?["type"] as? String ?? "RollingUpdate"
            if strategy == "RollingUpdate", let update = status["updateRevision"] as? String, status["currentRevision"] as? String != update {
                return "\(updated) of \(wanted) replicas at revision \(update)"
            }
            return nil
        default:
            return nil
        }
    }

    /// Why `object` (a Job) will never finish: its `Failed` condition's reason and message
    /// (`BackoffLimitExceeded`, `DeadlineExceeded`); nil while it may still complete.
    static func failed(_ object: [String: Any]) -> String? {
        guard object["kind"] as? String == "Job", let failed = condition("Failed", of: object) else { return nil }
        return "failed (\(failed["reason"] as? String ?? "Failed")): \(failed["message"] as? String ?? "")"
    }

    /// `object`'s status condition of `type` when its status is "True".
    private static func condition(_ type: String, of object: [String: Any]) -> [String: Any]? {
        let conditions = (object["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
        return conditions.first { $0["type"] as? String == type && $0["status"] as? String == "True" }
    }

    /// Why `pod` is not running: "pod app/processor-abc: ImagePullBackOff (Back-off pulling image …)";
    /// nil when it runs and is ready or is only starting. `logs` gives a crash-looping pod's last lines.
    static func problem(_ pod: [String: Any], logs: (String) -> String = { _ in "" }) -> String? {
        let metadata = pod["metadata"] as? [String: Any] ?? [:]
        let name = "pod \(metadata["namespace"] as? String ?? "")/\(metadata["name"] as? String ?? "")"
        let status = pod["status"] as? [String: Any] ?? [:]
        let conditions = status["conditions"] as? [[String: Any]] ?? []
        if let scheduled = conditions.first(where: { $0["type"] as? String == "PodScheduled" }), scheduled["status"] as? String == "False" {
            return "\(name): Pending (\(scheduled["reason"] as? String ?? "not scheduled")): \(scheduled["message"] as? String ?? "")"
        }
        for container in (status["initContainerStatuses"] as? [[String: Any]] ?? []) + (status["containerStatuses"] as? [[String: Any]] ?? []) {
            guard let waiting = (container["state"] as? [String: Any])?["waiting"] as? [String: Any], let reason = waiting["reason"] as? String,
                  !["ContainerCreating", "PodInitializing"].contains(reason) else { continue }
            let message = (waiting["message"] as? String).map { " (\($0))" } ?? ""
            var text = "\(name): \(reason)\(message), container \(container["name"] as? String ?? "")"
            if reason == "CrashLoopBackOff" || reason == "RunContainerError" {
                let exit = ((container["lastState"] as? [String: Any])?["terminated"] as? [String: Any])?["exitCode"] as? Int
                text += ", restarts \(container["restartCount"] as? Int ?? 0)\(exit.map { ", last exit code \($0)" } ?? "")"
                let lines = logs(container["name"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                if !lines.isEmpty { text += "; its last log lines:\n" + lines.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n") }
            }
            return text
        }
        return nil
    }

    /// Whether `pod`'s labels match `selector` (`spec.selector.matchLabels`).
    static func matches(_ pod: [String: Any], selector: [String: Any]) -> Bool {
        let labels = (pod["metadata"] as? [String: Any])?["labels"] as? [String: Any] ?? [:]
        let wanted = selector["matchLabels"] as? [String: Any] ?? [:]
        return !wanted.isEmpty && wanted.allSatisfy { labels[$0.key] as? String == $0.value as? String }
    }
}
