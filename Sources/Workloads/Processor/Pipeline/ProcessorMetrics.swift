import Foundation
import Synchronization
import WorkloadKit

/// Counters, histograms and the latest sample per GPU, shared by the pipeline and the HTTP server.
final class ProcessorMetrics: Sendable {
    private struct State {
        var consumed: [String: Int] = [:]
        var written: [String: Int] = [:]
        var deadLettered = 0
        var writeFailures = 0
        var batchSizes = Histogram(bounds: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000])
        var writeSeconds = Histogram(bounds: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
        var latest: [String: [UInt8]] = [:]
        var kafkaError: Date?
    }

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var total = 0
        init(bounds: [Double]) { self.bounds = bounds; counts = Array(repeating: 0, count: bounds.count) }
        mutating func observe(_ value: Double) {
            for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            total += 1
        }
        func render(_ name: String) -> String {
            var lines = zip(bounds, counts).map { "\(name)_bucket{le=\"\($0)\"} \($1)" }
            lines += ["\(name)_bucket{le=\"+Inf\"} \(total)", "\(name)_sum \(sum)", "\(name)_count \(total)"]
            return lines.joined(separator: "\n")
        }
    }

    private let state = Mutex(State())

    func consumed(_ topic: String) { state.withLock { $0.consumed[topic, default: 0] += 1 } }
    func deadLettered() { state.withLock { $0.deadLettered += 1 } }
    func batch(size: Int, seconds: Double, written: [String: Int]) {
        state.withLock {
            $0.batchSizes.observe(Double(size))
            $0.writeSeconds.observe(seconds)
            for (topic, n) in written { $0.written[topic, default: 0] += n }
        }
    }
    func writeFailed() { state.withLock { $0.writeFailures += 1 } }
    func kafkaFailed() { state.withLock { $0.kafkaError = Date() } }
    func latest(gpu: String, sample: [UInt8]) { state.withLock { $0.latest[gpu] = sample } }

    var kafkaHealthy: Bool { state.withLock { $0.kafkaError.map { Date().timeIntervalSince($0) > 10 } ?? true } }
    var deadLetterCount: Int { state.withLock { $0.deadLettered } }

    /// `/gpu/info`: the latest sample of every GPU as a JSON object keyed by UUID.
    func gpuInfo() -> String {
        state.withLock { s in
            "{" + s.latest.sorted { $0.key < $1.key }.map { "\"\($0.key)\":" + String(decoding: $0.value, as: UTF8.self) }.joined(separator: ",") + "}"
        }
    }

    /// `/metrics` in the Prometheus text format; `lag` is the consumer's per-partition lag now.
    func prometheus(lag: [TopicPartition: Int64] = [:]) -> String {
        var lagLines = ["# TYPE processor_consumer_lag gauge"]
        lagLines += lag.sorted { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }
            .map { "processor_consumer_lag{topic=\"\($0.key.topic)\",partition=\"\($0.key.partition)\"} \($0.value)" }
        lagLines += ["# TYPE processor_consumer_lag_total gauge", "processor_consumer_lag_total \(lag.values.reduce(0, +))"]
        return state.withLock { s in
            var lines = ["# TYPE processor_consumed_total counter"]
            lines += s.consumed.sorted { $0.key < $1.key }.map { "processor_consumed_total{topic=\"\($0.key)\"} \($0.value)" }
            lines += ["# TYPE processor_written_total counter"]
            lines += s.written.sorted { $0.key < $1.key }.map { "processor_written_total{topic=\"\($0.key)\"} \($0.value)" }
            lines += ["# TYPE processor_dead_lettered_total counter", "processor_dead_lettered_total \(s.deadLettered)",
                      "# TYPE processor_write_failures_total counter", "processor_write_failures_total \(s.writeFailures)",
                      "# TYPE processor_batch_size histogram", s.batchSizes.render("processor_batch_size"),
                      "# TYPE processor_write_latency_seconds histogram", s.writeSeconds.render("processor_write_latency_seconds"),
                      "# TYPE processor_gpus gauge", "processor_gpus \(s.latest.count)"] + lagLines
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
