import Digest
import Foundation
import JSON
import PlanLanguage

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
package struct PipelineValues: Sendable {
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
    func apply(to objects: [JSONValue]) -> [JSONValue] {
        var objects = objects.map(setting)
        let configDigests = Dictionary(uniqueKeysWithValues: objects.compactMap { object -> (String, String)? in
            guard object["kind"]?.string == "ConfigMap", let key = Self.key(object) else { return nil }
            return (key, Self.digest(object["data"] ?? .object([:])))
        })
        objects = objects.map { Self.annotatingConfig($0, digests: configDigests) }
        return objects.map { Self.namingTopicsJob($0, digests: configDigests) }
    }

    private func setting(_ object: JSONValue) -> JSONValue {
        var object = object
        let kind = object["kind"]?.string ?? ""
        if kind == "ConfigMap", let key = Self.key(object) {
            object.edit("data") { data in
                for (name, value) in configMaps[key] ?? [:] { data[name] = .string(value) }
                if key == "platform/kafka-topics", let topics = data["topics"]?.string {
                    data["topics"] = .string(topics.split(separator: "\n").map { line in
                        line.split(separator: ":").first.map { "\($0):\(pipeline.partitions)" } ?? String(line)
                    }.joined(separator: "\n") + "\n")
                }
            }
        }
        if kind == "NetworkPolicy", let nodeNetwork, object["metadata"]?["name"]?.string == "allow-from-nodes", case .object? = object["spec"] {
            object.edit("spec", "ingress") { ingress in
                ingress = ingress.mapElements { rule in
                    var rule = rule
                    rule["from"] = (rule["from"] ?? .array([])).mapElements { peer in
                        guard case .object? = peer["ipBlock"] else { return peer }
                        var peer = peer
                        peer.edit("ipBlock") { $0["cidr"] = .string(nodeNetwork.description) }
                        return peer
                    }
                    return rule
                }
            }
        }
        if kind == "StatefulSet", Self.key(object) == Kafka.statefulSet {
            let settings = Kafka.settings(replicas: pipeline.kafkaReplicas)
            object.edit("spec") { $0["replicas"] = .int(pipeline.kafkaReplicas) }
            object.edit("spec", "template", "spec", "containers") { containers in
                containers = containers.mapElements { container in
                    var container = container
                    container["env"] = (container["env"] ?? .array([])).mapElements { variable in
                        guard let name = variable["name"]?.string, let value = settings[name] else { return variable }
                        return ["name": .string(name), "value": .string(value)]
                    }
                    return container
                }
            }
        }
        if kind == "Deployment", !images.isEmpty {
            object.edit("spec", "template", "spec", "containers") { containers in
                containers = containers.mapElements { container in
                    var container = container
                    if let name = container["name"]?.string, let image = images[name] { container["image"] = .string(image) }
                    return container
                }
            }
        }
        return object
    }

    /// A Deployment whose pods read ConfigMaps (envFrom) gets their data's digest as a pod annotation.
    private static func annotatingConfig(_ object: JSONValue, digests: [String: String]) -> JSONValue {
        guard object["kind"]?.string == "Deployment", let namespace = object["metadata"]?["namespace"]?.string else { return object }
        let containers = object["spec"]?["template"]?["spec"]?["containers"]?.array ?? []
        let read = containers.flatMap { $0["envFrom"]?.array ?? [] }
            .compactMap { $0["configMapRef"]?["name"]?.string }
            .compactMap { digests["\(namespace)/\($0)"] }
        guard !read.isEmpty else { return object }
        var object = object
        object.edit("spec", "template", "metadata", "annotations") {
            $0["provision.dev/config-digest"] = .string(String(SHA256.hex(read.joined(separator: ",")).prefix(16)))
        }
        return object
    }

    /// The topics Job named after its own content and the ConfigMaps it mounts (`kafka-topics-<12 hex>`).
    private static func namingTopicsJob(_ object: JSONValue, digests: [String: String]) -> JSONValue {
        guard object["kind"]?.string == "Job", key(object) == "platform/kafka-topics" else { return object }
        let volumes = object["spec"]?["template"]?["spec"]?["volumes"]?.array ?? []
        let mounted = volumes.compactMap { $0["configMap"]?["name"]?.string }.map { digests["platform/\($0)"] ?? "" }
        var object = object
        let name = "kafka-topics-" + SHA256.hex(([digest(object)] + mounted).joined(separator: ",")).prefix(12)
        object.edit("metadata") { $0["name"] = .string(name) }
        return object
    }

    private static func key(_ object: JSONValue) -> String? {
        guard let name = object["metadata"]?["name"]?.string else { return nil }
        return "\(object["metadata"]?["namespace"]?.string ?? "")/\(name)"
    }

    /// SHA-256 of a JSON value's canonical form.
    private static func digest(_ value: JSONValue) -> String {
        SHA256.hex(Array(value.compactData))
    }

    /// A rate as the producer reads it: "50", "12.5".
    static func number(_ value: Double) -> String { PipelineSpec.number(value) }
}
