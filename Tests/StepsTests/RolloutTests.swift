@testable import App
import Foundation
@testable import Kube
import Testing

/// `Rollout` judges Deployments and StatefulSets as `kubectl rollout status` does and names why a
/// pod does not run; `Manifests` selects a namespace from kustomize's output as typed JSON.
@Suite struct RolloutTests {
    func deployment(generation: Int = 2, observed: Int = 2, replicas: Int? = 2, updated: Int = 2, total: Int = 2, available: Int = 2) -> [String: Any] {
        ["kind": "Deployment", "metadata": ["generation": generation], "spec": replicas.map { ["replicas": $0] } ?? [:],
         "status": ["observedGeneration": observed, "replicas": total, "updatedReplicas": updated, "availableReplicas": available]]
    }

    @Test func deploymentRollsOutOnlyWhenObservedUpdatedAndAvailable() {
        #expect(Rollout.pending(deployment()) == nil)
        #expect(Rollout.pending(deployment(observed: 1))?.contains("observe generation 2") == true)
        #expect(Rollout.pending(deployment(updated: 1, total: 2)) == "1 of 2 updated replicas")
        #expect(Rollout.pending(deployment(total: 3)) == "1 old replicas pending termination")
        #expect(Rollout.pending(deployment(available: 1)) == "1 of 2 updated replicas available")
        #expect(Rollout.pending(deployment(replicas: nil, updated: 1, total: 1, available: 1)) == nil, "no replicas field (the HPA's): one")
    }

    @Test func statefulSetNeedsReadyReplicasAtTheUpdateRevision() {
        func set(ready: Int, current: String, update: String) -> [String: Any] {
            ["kind": "StatefulSet", "metadata": ["generation": 1], "spec": ["replicas": 1],
             "status": ["observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": ready, "currentRevision": current, "updateRevision": update]]
        }
        #expect(Rollout.pending(set(ready: 1, current: "a", update: "a")) == nil)
        #expect(Rollout.pending(set(ready: 0, current: "a", update: "a")) == "0 of 1 replicas ready")
        #expect(Rollout.pending(set(ready: 1, current: "a", update: "b"))?.contains("revision b") == true)
    }

    @Test func podProblemsNameTheReasonAndACrashLoopsLastLogLines() {
        let pending: [String: Any] = ["metadata": ["name": "p-1", "namespace": "app"],
                                      "status": ["conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available"]]]]
        #expect(Rollout.problem(pending) == "pod app/p-1: Pending (Unschedulable): 0/2 nodes are available")
        let crash: [String: Any] = ["metadata": ["name": "p-2", "namespace": "app"],
                                    "status": ["containerStatuses": [["name": "c", "restartCount": 3, "state": ["waiting": ["reason": "CrashLoopBackOff"]],
                                                                      "lastState": ["terminated": ["exitCode": 2]]]]]]
        let text = Rollout.problem(crash) { $0 == "c" ? "line one\nboom\n" : "" } ?? ""
        #expect(text.hasPrefix("pod app/p-2: CrashLoopBackOff, container c, restarts 3, last exit code 2; its last log lines:") && text.hasSuffix("      boom"), "\(text)")
        let starting: [String: Any] = ["metadata": ["name": "p-3"], "status": ["containerStatuses": [["name": "c", "state": ["waiting": ["reason": "ContainerCreating"]]]]]]
        #expect(Rollout.problem(starting) == nil)
    }

    @Test func manifestsSelectANamespaceKeepQuotedScalarsAsStringsAndLeaveMonitoringKindsOut() throws {
        let yaml = """
            apiVersion: v1
            kind: Namespace
            metadata: {name: app}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: c, namespace: app}
            data: {PORT: "8080", FLAG: "yes", N: "1.5"}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: d, namespace: app}
            spec: {replicas: 2, paused: false}
            ---
            apiVersion: monitoring.coreos.com/v1
            kind: ServiceMonitor
            metadata: {name: s, namespace: app}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: other, namespace: platform}
            """
        let manifests = try Manifests.select(yaml, namespace: "app")
        #expect(manifests.ids.map(\.description) == ["apps/v1 Deployment app/d", "v1 ConfigMap app/c", "v1 Namespace app"])
        let json = manifests.objects.map(\.json).joined(separator: "\n")
        #expect(json.contains(#""data":{"FLAG":"yes","N":"1.5","PORT":"8080"}"#) && json.contains(#""spec":{"paused":false,"replicas":2}"#), "\(json)")
        #expect(KubeObject("apps/v1 Deployment app/d")?.reference == "deployment.apps/d" && KubeObject("v1 Namespace app")?.namespace == "")
        #expect(try Manifests.select(yaml, namespace: "app").digest == manifests.digest)
    }
}

/// The tests write the API's answers as JSON objects; provision decodes them into its typed models.
extension Rollout {
    static func pending(_ object: [String: Any]) -> String? { pending(decoded(object) as KubeWorkload) }
    static func failed(_ object: [String: Any]) -> String? { failed(decoded(object) as KubeWorkload) }
    static func problem(_ pod: [String: Any], logs: (String) -> String = { _ in "" }) -> String? { problem(decoded(pod) as KubePod, logs: logs) }
}

/// `object` as JSON, decoded as `T`.
func decoded<T: Decodable>(_ object: [String: Any]) -> T {
    // swiftlint:disable:next force_try
    try! JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: object))
}
