@testable import App
import Foundation
@testable import Kube
import Testing

/// `HPAStatus` reads an HPA as `kubectl get -o json` answers it (the shapes the real controller
/// writes); `ScaleCheck`'s pure helpers build the ConfigMap that restores the producers' RATE.
@Suite struct HPAStatusTests {
    static let scaling = #"""
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "producer", "namespace": "app", "generation": 1},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "producer"}, "minReplicas": 1, "maxReplicas": 6,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]},
         "status": {"currentReplicas": 2, "desiredReplicas": 6, "lastScaleTime": "2026-12-02T01:20:49Z",
                    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 250, "averageValue": "250m"}}}],
                    "conditions": [
                      {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "the HPA controller was able to update the target scale to 6"},
                      {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
                      {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas", "message": "the desired replica count is more than the maximum replica count"}]}}
        """#

    static let noMetrics = #"""
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "producer", "namespace": "app"},
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "producer"}, "maxReplicas": 6},
         "status": {"currentReplicas": 1, "desiredReplicas": 1,
                    "conditions": [
                      {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "the HPA controller was able to get the target's current scale"},
                      {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"}]}}
        """#

    @Test func aScalingHPAGivesItsBoundsReplicasCPUAndConditions() throws {
        let hpa = try HPAStatus(json: Data(Self.scaling.utf8))
        #expect(hpa.namespace == "app" && hpa.name == "producer" && hpa.target == "producer")
        #expect(hpa.minReplicas == 1 && hpa.maxReplicas == 6)
        #expect(hpa.currentReplicas == 2 && hpa.desiredReplicas == 6)
        #expect(hpa.cpuUtilization == 250)
        #expect(hpa.conditions.map(\.type) == ["AbleToScale", "ScalingActive", "ScalingLimited"])
        #expect(hpa.condition("ScalingLimited")?.reason == "TooManyReplicas")
        #expect(hpa.blocking.isEmpty, "limited by its maximum is still scaling")
    }

    @Test func anHPAWithoutMetricsIsBlockedByScalingActiveFalseAndSaysWhy() throws {
        let hpa = try HPAStatus(json: Data(Self.noMetrics.utf8))
        #expect(hpa.minReplicas == 1, "minReplicas defaults to 1")
        #expect(hpa.cpuUtilization == nil)
        #expect(hpa.blocking.map(\.type) == ["ScalingActive"])
        let lines = hpa.conditionLines(indent: "  ")
        #expect(lines.contains("  ScalingActive False FailedGetResourceMetric: the HPA was unable to compute the replica count"), "\(lines)")
        #expect(lines.contains("no metrics returned from resource metrics API"))
        #expect(lines.split(separator: "\n").count == 2)
    }

    @Test func anHPAWithoutAStatusYetHasZeroReplicasAndSaysNoConditionsWereReported() throws {
        let hpa = try HPAStatus(json: Data(#"{"kind": "HorizontalPodAutoscaler", "metadata": {"name": "p"}, "spec": {"minReplicas": 2, "maxReplicas": 3}}"#.utf8))
        #expect(hpa.currentReplicas == 0 && hpa.desiredReplicas == 0 && hpa.conditions.isEmpty)
        #expect(hpa.conditionLines().contains("none reported"))
    }

    @Test func anythingButAnHPAIsRejectedNamingWhatItIs() {
        #expect(throws: HPAStatus.ParseError.self) { try HPAStatus(json: Data("not json".utf8)) }
        do {
            _ = try HPAStatus(json: Data(#"{"kind": "Deployment", "metadata": {"name": "producer"}}"#.utf8))
            Issue.record("a Deployment parsed as an HPA")
        } catch {
            #expect("\(error)".contains("is a Deployment, not a HorizontalPodAutoscaler"), "\(error)")
        }
        #expect(throws: HPAStatus.ParseError.self) { try HPAStatus(json: Data(#"{"kind": "HorizontalPodAutoscaler", "metadata": {"name": "p"}, "spec": {}}"#.utf8)) }
    }

    @Test func theRestoredConfigMapIsTheAppliedOneWithTheOriginalRate() throws {
        let list = #"""
            {"apiVersion": "v1", "kind": "List", "items": [
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "processor-config", "namespace": "app"}, "data": {"RATE": "1"}},
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "producer-config", "namespace": "app", "labels": {"app.kubernetes.io/name": "producer"}},
               "data": {"RATE": "200", "BATCH_SIZE": "10000"}}]}
            """#
        let data = try #require(ScaleCheck.configMap("producer-config", in: Data(list.utf8), rate: "150"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((object["metadata"] as? [String: Any])?["name"] as? String == "producer-config")
        #expect((object["metadata"] as? [String: Any])?["labels"] as? [String: String] == ["app.kubernetes.io/name": "producer"], "the labels provision applied stay")
        #expect(object["data"] as? [String: String] == ["RATE": "150", "BATCH_SIZE": "10000"])
        #expect(ScaleCheck.configMap("other", in: Data(list.utf8), rate: "1") == nil)
        #expect(ScaleCheck.configMap("producer-config", in: Data("".utf8), rate: "1") == nil, "no manifest on the node: nil (a merge patch restores)")
    }

    @Test func ratesAreWrittenAsTheConfigMapWouldHoldThem() {
        #expect(ScaleCheck.format(200) == "200")
        #expect(ScaleCheck.format(2000) == "2000")
        #expect(ScaleCheck.format(12.5) == "12.5")
        #expect(ScaleReport.Event(seconds: 12, event: "desired 1 → 6").line == "   12.0s  desired 1 → 6")
        #expect(ScaleCheck.seconds(.milliseconds(3_460)) == 3.5)
    }
}
