import Digest
import Foundation

/// The plan's `pipeline:` section written into the rendered k8s/ objects, so that the K3s runtime
/// runs what the plan says rather than the tree's examples:
///
/// - `pipeline.images`: the `processor` and `producer` containers' images (the overlay's otherwise);
/// - `rate`, `gpus_per_producer` → ConfigMap `app/producer-config` (`RATE`, `GPU_COUNT`);
///   `batch_size`, `batch_wait_ms`, `retention_days` → `app/processor-config`;
///   `partitions` → every topic of `platform/kafka-topics`;
/// - a Deployment's pod template is annotated with a digest of the ConfigMaps it reads, so a changed
///   setting rolls its pods (they read the ConfigMap only when they start);
/// - the topics Job is named after a digest of it and its topics (`kafka-topics-<digest>`): a
///   Job's template is immutable, so a changed one is a new Job and the old one is pruned;
/// - `kafka_replicas` (1 or 3) → StatefulSet `platform/kafka`'s replicas, its controller quorum
///   voters (`<ordinal>@kafka-<ordinal>.<headless Service>:9093`, one per pod), replication factors
///   (min(replicas, 3)) and min.insync.replicas (2 from 3 brokers, 1 below), and every broker in the
///   workloads' `KAFKA_BROKERS`; each pod's node id and advertised listener follow its own ordinal and
///   name in the manifest itself;
/// - `cluster.vpc_cidr` → the `ipBlock` of every NetworkPolicy named `allow-from-nodes` (the
///   overlay's copy names the default VPC), so the nodes' range follows the plan.
struct PipelineValues: Sendable {
    let pipeline: PipelineSpec
    /// The nodes' range (the plan's VPC), written into the `allow-from-nodes` policies; nil leaves them as rendered.
    var nodeNetwork: IPv4CIDR?

    init(pipeline: PipelineSpec, nodeNetwork: IPv4CIDR? = nil) {
        self.pipeline = pipeline
        self.nodeNetwork = nodeNetwork
    }

    /// The ConfigMap keys the plan sets, by ConfigMap (`namespace/name`).
    var configMaps: [String: [String: String]] {
        let brokers = (0..<pipeline.kafkaReplicas).map { "\(Kafka.host($0)):\(Kafka.clientPort)" }.joined(separator: ",")
        return [
            "app/producer-config": ["RATE": Self.number(pipeline.rate), "GPU_COUNT": String(pipeline.gpusPerProducer), "KAFKA_BROKERS": brokers],
            "app/processor-config": ["BATCH_SIZE": String(pipeline.batchSize), "BATCH_WAIT_MS": String(pipeline.batchWaitMs),
                                     "RETENTION_DAYS": String(pipeline.retentionDays), "KAFKA_BROKERS": brokers],
        ]
    }

    /// The KRaft brokers of k8s/base/platform/kafka-statefulset.yaml: StatefulSet `kafka` behind the
    /// headless Service `kafka-broker` in `platform`.
    enum Kafka {
        static let statefulSet = "platform/kafka"
        static let clientPort = 9092
        static let controllerPort = 9093
        /// Pod `ordinal`'s name through the headless Service.
        static func host(_ ordinal: Int) -> String { "kafka-\(ordinal).kafka-broker.platform.svc.cluster.local" }

        /// The broker settings that follow the replica count, as the image's KAFKA_* variables.
        static func settings(replicas: Int) -> [String: String] {
            let factor = String(min(replicas, 3)), insync = replicas >= 3 ? "2" : "1"
            return [
                "KAFKA_CONTROLLER_QUORUM_VOTERS": (0..<replicas).map { "\($0)@\(host($0)):\(controllerPort)" }.joined(separator: ","),
                "KAFKA_DEFAULT_REPLICATION_FACTOR": factor,
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": factor,
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": factor,
                "KAFKA_MIN_INSYNC_REPLICAS": insync,
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": insync,
            ]
        }
    }

    /// The container images the plan sets, by container name.
    var images: [String: String] {
        guard let images = pipeline.images else { return [:] }
        return ["processor": images.processor, "producer": images.producer]
    }

    /// What the step's inputs say of these values (no secret in them).
    var inputs: String {
        "pipeline rate=\(Self.number(pipeline.rate)) gpus=\(pipeline.gpusPerProducer) batch=\(pipeline.batchSize)/\(pipeline.batchWaitMs)ms "
            + "partitions=\(pipeline.partitions) retention=\(pipeline.retentionDays)d images=\(images.sorted { $0.key < $1.key }.map(\.value).joined(separator: ","))"
            + (pipeline.kafkaReplicas == 1 ? "" : " kafka=\(pipeline.kafkaReplicas)")
            + (nodeNetwork.map { " nodes=\($0)" } ?? "")
    }

    /// `objects` (kustomize's rendering, as JSON values) with the plan's values written in.
    func apply(to objects: [[String: Any]]) -> [[String: Any]] {
        var objects = objects.map(setting)
        let configDigests = Dictionary(uniqueKeysWithValues: objects.compactMap { object -> (String, String)? in
            guard object["kind"] as? String == "ConfigMap", let key = Self.key(object) else { return nil }
            return (key, Self.digest(object["data"] ?? [:]))
        })
        objects = objects.map { Self.annotatingConfig($0, digests: configDigests) }
        return objects.map { Self.namingTopicsJob($0, digests: configDigests) }
    }

    private func setting(_ object: [String: Any]) -> [String: Any] {
        var object = object
        let kind = object["kind"] as? String ?? ""
        if kind == "ConfigMap", let key = Self.key(object) {
            var data = object["data"] as? [String: Any] ?? [:]
            for (name, value) in configMaps[key] ?? [:] { data[name] = value }
            if key == "platform/kafka-topics", let topics = data["topics"] as? String {
                data["topics"] = topics.split(separator: "\n").map { line in
                    line.split(separator: ":").first.map { "\($0):\(pipeline.partitions)" } ?? String(line)
                }.joined(separator: "\n") + "\n"
            }
            object["data"] = data
        }
        if kind == "NetworkPolicy", let nodeNetwork, (object["metadata"] as? [String: Any])?["name"] as? String == "allow-from-nodes",
           var spec = object["spec"] as? [String: Any] {
            spec["ingress"] = (spec["ingress"] as? [[String: Any]] ?? []).map { rule in
                var rule = rule
                rule["from"] = (rule["from"] as? [[String: Any]] ?? []).map { peer in
                    guard var block = peer["ipBlock"] as? [String: Any] else { return peer }
                    block["cidr"] = nodeNetwork.description
                    var peer = peer
                    peer["ipBlock"] = block
                    return peer
                }
                return rule
            }
            object["spec"] = spec
        }
        if kind == "StatefulSet", Self.key(object) == Kafka.statefulSet {
            let settings = Kafka.settings(replicas: pipeline.kafkaReplicas)
            var spec = object["spec"] as? [String: Any] ?? [:]
            spec["replicas"] = pipeline.kafkaReplicas
            object["spec"] = spec
            object = Self.editingPodSpec(object) { podSpec in
                podSpec["containers"] = (podSpec["containers"] as? [[String: Any]] ?? []).map { container in
                    var container = container
                    container["env"] = (container["env"] as? [[String: Any]] ?? []).map { variable in
                        guard let name = variable["name"] as? String, let value = settings[name] else { return variable }
                        return ["name": name, "value": value]
                    }
                    return container
                }
            }
        }
        if kind == "Deployment", !images.isEmpty {
            object = Self.editingPodSpec(object) { podSpec in
                podSpec["containers"] = (podSpec["containers"] as? [[String: Any]] ?? []).map { container in
                    var container = container
                    if let name = container["name"] as? String, let image = images[name] { container["image"] = image }
                    return container
                }
            }
        }
        return object
    }

    /// A Deployment whose pods read ConfigMaps (envFrom) gets their data's digest as a pod annotation.
    private static func annotatingConfig(_ object: [String: Any], digests: [String: String]) -> [String: Any] {
        guard object["kind"] as? String == "Deployment", let namespace = (object["metadata"] as? [String: Any])?["namespace"] as? String else { return object }
        let template = (object["spec"] as? [String: Any])?["template"] as? [String: Any] ?? [:]
        let containers = (template["spec"] as? [String: Any])?["containers"] as? [[String: Any]] ?? []
        let read = containers.flatMap { $0["envFrom"] as? [[String: Any]] ?? [] }
            .compactMap { ($0["configMapRef"] as? [String: Any])?["name"] as? String }
            .compactMap { digests["\(namespace)/\($0)"] }
        guard !read.isEmpty else { return object }
        var object = object
        var spec = object["spec"] as? [String: Any] ?? [:]
        var newTemplate = template
        var metadata = template["metadata"] as? [String: Any] ?? [:]
        var annotations = metadata["annotations"] as? [String: Any] ?? [:]
        annotations["provision.dev/config-digest"] = String(SHA256.hex(read.joined(separator: ",")).prefix(16))
        metadata["annotations"] = annotations
        newTemplate["metadata"] = metadata
        spec["template"] = newTemplate
        object["spec"] = spec
        return object
    }

    /// The topics Job named after its own content and the ConfigMaps it mounts (`kafka-topics-<12 hex>`).
    private static func namingTopicsJob(_ object: [String: Any], digests: [String: String]) -> [String: Any] {
        guard object["kind"] as? String == "Job", key(object) == "platform/kafka-topics" else { return object }
        let podSpec = ((object["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
        let mounted = (podSpec["volumes"] as? [[String: Any]] ?? []).compactMap { ($0["configMap"] as? [String: Any])?["name"] as? String }
            .map { digests["platform/\($0)"] ?? "" }
        var object = object
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        metadata["name"] = "kafka-topics-" + SHA256.hex(([digest(object)] + mounted).joined(separator: ",")).prefix(12)
        object["metadata"] = metadata
        return object
    }

    private static func editingPodSpec(_ object: [String: Any], _ edit: (inout [String: Any]) -> Void) -> [String: Any] {
        var object = object
        var spec = object["spec"] as? [String: Any] ?? [:]
        var template = spec["template"] as? [String: Any] ?? [:]
        var podSpec = template["spec"] as? [String: Any] ?? [:]
        edit(&podSpec)
        template["spec"] = podSpec
        spec["template"] = template
        object["spec"] = spec
        return object
    }

    private static func key(_ object: [String: Any]) -> String? {
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        guard let name = metadata["name"] as? String else { return nil }
        return "\(metadata["namespace"] as? String ?? "")/\(name)"
    }

    /// SHA-256 of a JSON value's canonical form.
    private static func digest(_ value: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return SHA256.hex(Array(data))
    }

    /// A rate as the producer reads it: "50", "12.5".
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
