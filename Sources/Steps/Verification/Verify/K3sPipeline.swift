import Foundation
import JSON
import Kube

/// Where verify finds the pipeline on K3s (the k8s/ tree's objects) and how it reads what the
/// cluster says about it.
public enum K3sPipeline {
    /// The processor's Service (k8s/base/app/processor-service.yaml).
    public static let processor = (namespace: "app", name: "processor", port: 8080)
    /// The ConfigMap whose `topics` lists `name:partitions`, one a line (k8s/base/platform/kafka-topics-configmap.yaml).
    public static let topicsConfigMap = (namespace: "platform", name: "kafka-topics")
    /// The broker's pod, and the command in it that describes its topics as the broker sees them.
    public static let broker = (namespace: "platform", pod: "kafka-0",
                                describeTopics: ["/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092", "--describe"])
    /// Loki's Service (the loki chart in monolithic mode, k8s/base/monitoring/charts/loki.yaml), where Alloy ships the pods' logs.
    public static let loki = (namespace: "monitoring", name: "loki", port: 3100)
    /// kube-prometheus-stack's job for its node exporters.
    public static let nodeExporterJob = "node-exporter"
    /// The producers' pods (their `NODE_NAME` is the pod's name: what /gpu/info reports).
    public static let producers = (namespace: "app", selector: "app.kubernetes.io/name=producer")

    /// The names of the running pods in a Pod list (the API's JSON).
    public static func runningPods(fromJSON data: Data) -> [String] {
        let pods = KubeList<KubePod>.decode(String(decoding: data, as: UTF8.self)) ?? []
        return pods.compactMap { $0.status?.phase == "Running" ? $0.metadata?.name : nil }.sorted()
    }

    /// Each topic's partition count from `kafka-topics.sh --describe` (its `Topic: NAME ... PartitionCount: N` lines).
    public static func topics(fromDescribe text: String) -> [String: Int] {
        var topics: [String: Int] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("Topic:") {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            guard let name = fields.firstIndex(of: "Topic:").flatMap({ fields.indices.contains($0 + 1) ? fields[$0 + 1] : nil }),
                  let count = fields.firstIndex(of: "PartitionCount:").flatMap({ fields.indices.contains($0 + 1) ? Int(fields[$0 + 1]) : nil }) else { continue }
            topics[name] = count
        }
        return topics
    }

    /// `name:partitions` lines of the topics ConfigMap (the API's JSON).
    public static func topics(fromConfigMapJSON data: Data) -> [String: Int] {
        guard let text = (try? JSONDecoder().decode(JSONValue.self, from: data))?["data"]?["topics"]?.string else { return [:] }
        var topics: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: ":")
            if parts.count == 2, let count = Int(parts[1]) { topics[String(parts[0])] = count }
        }
        return topics
    }
}
