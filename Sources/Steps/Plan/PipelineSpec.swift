import Foundation

/// What runs on the nodes: the plan's `pipeline:` section, shared by both runtimes (the sandbox's
/// processes and the aws target's K3s).
public struct PipelineSpec: Sendable, Equatable {
    /// Events per second of each producer (one producer per worker).
    public var rate = 50.0
    /// Simulated GPUs per producer.
    public var gpusPerProducer = 4
    /// Records per processor batch at most.
    public var batchSize = 500
    /// Longest wait to fill a processor batch, in milliseconds.
    public var batchWaitMs = 200
    /// Partitions of each pipeline topic.
    public var partitions = 3
    /// Days the processor keeps documents (TTL index), 0 for ever.
    public var retentionDays = 0
    /// `verify` fails when the end-to-end latency p50 or p99 (event timestamp to stored, over the
    /// last 30 s) is at or above this (`pipeline.max_latency`); nil: the runtime's default
    /// (`ProcessesRuntime.maxLatency`, 5 s on K3s).
    public var maxLatency: Duration? = nil
    /// The limit on K3s and for a sandbox broker in memory, when the plan sets none.
    public static let defaultMaxLatency: Duration = .seconds(5)
    /// Kafka brokers on K3s (`pipeline.kafka_replicas`): 1, or 3 for a KRaft quorum that survives one
    /// broker's loss (replication factor 3, min.insync.replicas 2).
    public var kafkaReplicas = 1
    /// The broker counts `pipeline.kafka_replicas` accepts: one, or a quorum of three (an even count
    /// survives no more failures than one fewer).
    public static let kafkaReplicaCounts = [1, 3]
    /// The workloads' container images on K3s (`pipeline.images`); nil: the overlay's own.
    public var images: Images? = nil

    /// `pipeline.images`: what the K3s runtime's Deployments run (required on aws).
    public struct Images: Sendable, Equatable {
        /// The processor's image reference, pinned by tag or digest.
        public var processor: String
        /// The producers' image reference, pinned by tag or digest.
        public var producer: String

        public init(processor: String, producer: String) {
            self.processor = processor
            self.producer = producer
        }

        /// Why `reference` is not a pinned image reference (`registry/repository:tag` or
        /// `...@sha256:<64 hex>`), nil when it is.
        public static func problem(_ reference: String) -> String? {
            let name = #"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"#
            let pinned = #"^\#(name)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"#
            guard reference.range(of: pinned, options: .regularExpression) != nil else {
                return "'\(reference)' is not an image reference pinned by tag or digest"
            }
            return reference.hasSuffix(":latest") ? "'\(reference)' uses the moving tag 'latest'" : nil
        }
    }

    /// The topics the runtime creates, with their partitions.
    public static let topics = ["gpu.metrics.v1", "token.usage.v1", "pipeline.deadletter.v1"]

    public init() {}
}
