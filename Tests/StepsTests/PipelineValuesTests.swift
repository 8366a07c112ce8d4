@testable import App
import Foundation
@testable import Kube
@testable import PlanLanguage
import Testing

/// The plan's `pipeline:` values reach the K3s runtime's objects: images, ConfigMap settings and
/// partitions, a pod-template digest that rolls pods when a setting changes, and a topics Job named
/// after its content (rendered from the repository's real k8s/overlays/aws by kubectl kustomize).
@Suite struct PipelineValuesTests {
    static func render() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["kubectl", "kustomize", repositoryRoot.appendingPathComponent("k8s/overlays/aws").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let yaml = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return yaml
    }

    /// The objects of both namespaces as JSON values, by "Kind namespace/name".
    static func objects(_ yaml: String, _ pipeline: PipelineSpec) throws -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for namespace in ["app", "platform"] {
            for (id, json) in try Manifests.select(yaml, namespace: namespace, values: PipelineValues(pipeline: pipeline)).objects {
                result["\(id.kind) \(id.namespace)/\(id.name)"] = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            }
        }
        return result
    }

    static func containers(_ object: [String: Any]?) -> [[String: Any]] {
        (((object?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]] ?? []
    }

    static func podAnnotation(_ object: [String: Any]?) -> String? {
        ((((object?["spec"] as? [String: Any])?["template"] as? [String: Any])?["metadata"] as? [String: Any])?["annotations"] as? [String: Any])?["provision.dev/config-digest"] as? String
    }

    @Test func planValuesReachImagesConfigMapsAndTopics() throws {
        let yaml = try Self.render()
        var pipeline = PipelineSpec()
        pipeline.rate = 12.5
        pipeline.gpusPerProducer = 2
        pipeline.partitions = 9
        pipeline.retentionDays = 7
        pipeline.images = .init(processor: "ghcr.io/acme/processor:v9", producer: "ghcr.io/acme/producer:v9")
        let objects = try Self.objects(yaml, pipeline)
        #expect(Self.containers(objects["Deployment app/processor"]).first?["image"] as? String == "ghcr.io/acme/processor:v9")
        #expect(Self.containers(objects["Deployment app/producer"]).first?["image"] as? String == "ghcr.io/acme/producer:v9")
        let producer = objects["ConfigMap app/producer-config"]?["data"] as? [String: Any]
        #expect(producer?["RATE"] as? String == "12.5" && producer?["GPU_COUNT"] as? String == "2")
        #expect((objects["ConfigMap app/processor-config"]?["data"] as? [String: Any])?["RETENTION_DAYS"] as? String == "7")
        let topics = (objects["ConfigMap platform/kafka-topics"]?["data"] as? [String: Any])?["topics"] as? String
        #expect(topics == "gpu.metrics.v1:9\ntoken.usage.v1:9\npipeline.deadletter.v1:9\n", "\(topics ?? "")")

        // Without images the overlay's stay.
        let plain = try Self.objects(yaml, PipelineSpec())
        #expect(Self.containers(plain["Deployment app/processor"]).first?["image"] as? String == "ghcr.io/gpu-pipeline/processor:v0.1.0")
    }

    @Test func aChangedSettingRollsItsPodsAndRenamesTheTopicsJob() throws {
        let yaml = try Self.render()
        let base = try Self.objects(yaml, PipelineSpec())
        var faster = PipelineSpec()
        faster.rate = 500
        let changed = try Self.objects(yaml, faster)
        let before = try #require(Self.podAnnotation(base["Deployment app/producer"]))
        #expect(Self.podAnnotation(changed["Deployment app/producer"]) != before, "the producers read RATE at start: a new rate rolls them")
        #expect(Self.podAnnotation(changed["Deployment app/processor"]) == Self.podAnnotation(base["Deployment app/processor"]), "the processor's config did not change")
        let jobs = { (objects: [String: [String: Any]]) in objects.keys.filter { $0.hasPrefix("Job platform/kafka-topics-") } }
        #expect(jobs(base).count == 1 && jobs(changed) == jobs(base), "same topics, same Job")
        var more = PipelineSpec()
        more.partitions = 12
        let repartitioned = try Self.objects(yaml, more)
        #expect(jobs(repartitioned).count == 1 && jobs(repartitioned) != jobs(base), "a Job's template is immutable: new topics, new Job")
        #expect(try Self.objects(yaml, more).keys.sorted() == repartitioned.keys.sorted(), "the name is stable for the same content")
    }

    static func env(_ object: [String: Any]?) -> [String: [String: Any]] {
        let variables = containers(object).first?["env"] as? [[String: Any]] ?? []
        return Dictionary(variables.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// `kafka_replicas: 3` through the deploy step's own path (kustomize's render of the aws overlay,
    /// then `Manifests.select` with the plan's values, per namespace): a 3-voter KRaft quorum whose
    /// pods each take their node id from their ordinal and advertise their own name, replication
    /// factor 3 and min.insync.replicas 2, every broker in the clients' bootstrap list, and PDBs
    /// for Kafka, MongoDB and the processor; then the same objects pass check-k8s's validators
    /// (Kubernetes schemas, the KRaft quorum rules, the PDB rules).
    @Test func threeKafkaReplicasRenderAThreeVoterQuorumWithPerPodListenersAndBudgets() throws {
        let yaml = try Self.render()
        var pipeline = PipelineSpec()
        pipeline.kafkaReplicas = 3
        let objects = try Self.objects(yaml, pipeline)
        let kafka = try #require(objects["StatefulSet platform/kafka"])
        #expect((kafka["spec"] as? [String: Any])?["replicas"] as? Int == 3)
        #expect((kafka["spec"] as? [String: Any])?["serviceName"] as? String == "kafka-broker")
        let env = Self.env(kafka)
        let host = { (i: Int) in "kafka-\(i).kafka-broker.platform.svc.cluster.local" }
        #expect(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]?["value"] as? String == "0@\(host(0)):9093,1@\(host(1)):9093,2@\(host(2)):9093")
        let nodeID = ((env["KAFKA_NODE_ID"]?["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String
        #expect(nodeID == "metadata.labels['apps.kubernetes.io/pod-index']", "node.id from the pod's ordinal")
        #expect(env["KAFKA_ADVERTISED_LISTENERS"]?["value"] as? String == "PLAINTEXT://$(POD_NAME).kafka-broker.platform.svc.cluster.local:9092")
        for key in ["KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] {
            #expect(env[key]?["value"] as? String == "3", "\(key)")
        }
        #expect(env["KAFKA_MIN_INSYNC_REPLICAS"]?["value"] as? String == "2" && env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]?["value"] as? String == "2")
        let service = try #require(objects["Service platform/kafka-broker"])
        #expect((service["spec"] as? [String: Any])?["clusterIP"] as? String == "None", "per-pod names need the headless Service")
        let brokers = (0..<3).map { "\(host($0)):9092" }.joined(separator: ",")
        for configMap in ["ConfigMap app/producer-config", "ConfigMap app/processor-config"] {
            #expect((objects[configMap]?["data"] as? [String: Any])?["KAFKA_BROKERS"] as? String == brokers, "\(configMap)")
        }
        for budget in ["PodDisruptionBudget platform/kafka", "PodDisruptionBudget platform/mongodb", "PodDisruptionBudget app/processor"] {
            #expect((objects[budget]?["spec"] as? [String: Any])?["maxUnavailable"] as? Int == 1, "\(budget)")
        }

        // One broker (the default): one voter, factors 1, the manifest's own bootstrap address.
        let single = try Self.objects(yaml, PipelineSpec())
        let one = Self.env(single["StatefulSet platform/kafka"])
        #expect(one["KAFKA_CONTROLLER_QUORUM_VOTERS"]?["value"] as? String == "0@\(host(0)):9093")
        #expect(one["KAFKA_DEFAULT_REPLICATION_FACTOR"]?["value"] as? String == "1" && one["KAFKA_MIN_INSYNC_REPLICAS"]?["value"] as? String == "1")
        #expect(PipelineValues(pipeline: PipelineSpec()).inputs.contains("kafka=") == false, "the default leaves the step's inputs as they were")
        #expect(PipelineValues(pipeline: pipeline).inputs.contains(" kafka=3"))

        // check-k8s's validators on both renders (the venv scripts/check-k8s installs; scripts/test runs it first).
        let python = repositoryRoot.appendingPathComponent(".tools/k8s/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "run scripts/check-k8s once: it installs .tools/k8s")
        for (name, rendered) in [("overlay-kafka3", objects), ("overlay-kafka1", single)] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).yaml")
            let documents = try rendered.values.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            try documents.joined(separator: "\n---\n").write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let process = Process()
            process.executableURL = python
            process.arguments = [repositoryRoot.appendingPathComponent("scripts/check-k8s-manifests.py").path, "--k8s-version", "1.37.0", file.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(name): \(output)")
        }
    }

    @Test func aJobIsDoneWhenCompleteAndFailsAtOnceWhenFailed() {
        func job(_ conditions: [[String: Any]], succeeded: Int = 0, active: Int = 1) -> [String: Any] {
            ["kind": "Job", "metadata": ["generation": 1], "spec": [:] as [String: Any], "status": ["conditions": conditions, "succeeded": succeeded, "active": active]]
        }
        #expect(Rollout.pending(job([])) == "0 of 1 completions, 1 pods active")
        #expect(Rollout.pending(job([["type": "Complete", "status": "True"]], succeeded: 1, active: 0)) == nil)
        #expect(Rollout.failed(job([])) == nil)
        let failed = job([["type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"]], active: 0)
        #expect(Rollout.failed(failed) == "failed (BackoffLimitExceeded): Job has reached the specified backoff limit")
    }
}
