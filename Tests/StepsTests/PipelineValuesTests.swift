import Foundation
import Testing
@testable import Steps

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
