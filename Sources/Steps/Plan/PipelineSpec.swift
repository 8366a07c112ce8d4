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

    /// The topics the runtime creates, with their partitions.
    public static let topics = ["gpu.metrics.v1", "token.usage.v1", "pipeline.deadletter.v1"]

    public init() {}
}
