@testable import App
import Foundation
@testable import PlanLanguage
import Testing
@testable import Verification

/// How verify on K3s reads the broker's topics and the topics the k8s/ tree asks for.
@Suite struct K3sPipelineTests {
    @Test func describeOutputGivesEachTopicsPartitionCountAndIgnoresPartitionLines() {
        let text = """
            Topic: gpu.metrics.v1\tTopicId: 3hF0mRjVQxWcPq1nC5n4zA\tPartitionCount: 6\tReplicationFactor: 1\tConfigs: segment.bytes=1073741824
            \tTopic: gpu.metrics.v1\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: 
            Topic: pipeline.deadletter.v1\tTopicId: Zb1c\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: 
            \tTopic: pipeline.deadletter.v1\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: 
            """
        #expect(K3sPipeline.topics(fromDescribe: text) == ["gpu.metrics.v1": 6, "pipeline.deadletter.v1": 3])
        #expect(K3sPipeline.topics(fromDescribe: "").isEmpty)
    }

    @Test func theTopicsConfigMapOfTheK8sTreeListsThePipelinesTopicsAsNameColonPartitions() throws {
        let yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("k8s/base/platform/kafka-topics-configmap.yaml"), encoding: .utf8)
        let lines = yaml.components(separatedBy: "topics: |\n").last!.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let json = try JSONSerialization.data(withJSONObject: ["kind": "ConfigMap", "data": ["topics": lines.joined(separator: "\n")]])
        let topics = K3sPipeline.topics(fromConfigMapJSON: json)
        #expect(Set(topics.keys) == Set(PipelineSpec.topics), "\(topics)")
        #expect(topics.values.allSatisfy { $0 > 0 })
        #expect(yaml.contains("name: \(K3sPipeline.topicsConfigMap.name)") && yaml.contains("namespace: \(K3sPipeline.topicsConfigMap.namespace)"))
        let service = try String(contentsOf: repositoryRoot.appendingPathComponent("k8s/base/app/processor-service.yaml"), encoding: .utf8)
        #expect(service.contains("name: \(K3sPipeline.processor.name)") && service.contains("port: \(K3sPipeline.processor.port)"))
    }

    @Test func producersAreTheRunningPodsByName() {
        let json = #"{"items":[{"metadata":{"name":"producer-b"},"status":{"phase":"Running"}},{"metadata":{"name":"producer-a"},"status":{"phase":"Running"}},{"metadata":{"name":"producer-c"},"status":{"phase":"Pending"}}]}"#
        #expect(K3sPipeline.runningPods(fromJSON: Data(json.utf8)) == ["producer-a", "producer-b"])
        #expect(K3sPipeline.runningPods(fromJSON: Data("not json".utf8)).isEmpty)
    }
}
