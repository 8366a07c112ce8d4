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
        var endToEndSeconds = Histogram(bounds: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
        var latest: [String: (milliseconds: Int64, sample: [UInt8], values: GPURollups.Sample)] = [:]
        var kafkaError: Date?
        var heldSince: Date?
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

    private let state: Mutex<State>

    /// Metrics whose per-topic counters start at 0 for `topics` (the topics it consumes): a
    /// counter exported only from its first increase needs two scrapes after it before a rate
    /// sees it, one exported at 0 from the start needs one.
    init(topics: [String] = []) {
        var state = State()
        for topic in topics {
            state.consumed[topic] = 0
            state.written[topic] = 0
        }
        self.state = Mutex(state)
    }

    func consumed(_ topic: String) { state.withLock { $0.consumed[topic, default: 0] += 1 } }
    func deadLettered() { state.withLock { $0.deadLettered += 1 } }
    func batch(size: Int, seconds: Double, written: [String: Int]) {
        state.withLock {
            $0.batchSizes.observe(Double(size))
            $0.writeSeconds.observe(seconds)
            for (topic, n) in written { $0.written[topic, default: 0] += n }
        }
    }
    /// One record's event time (its producer's timestamp) to its arrival here, which is its
    /// stored `received_at`.
    func endToEnd(seconds: Double) { state.withLock { $0.endToEndSeconds.observe(max(0, seconds)) } }
    func writeFailed() { state.withLock { $0.writeFailures += 1 } }
    func kafkaFailed() { state.withLock { $0.kafkaError = Date() } }
    /// Keeps `sample` as the GPU's latest unless a newer one (by event time) is already kept.
    func latest(_ values: GPURollups.Sample, milliseconds: Int64, sample: [UInt8]) {
        state.withLock { s in
            if let kept = s.latest[values.gpu], kept.milliseconds > milliseconds { return }
            s.latest[values.gpu] = (milliseconds, sample, values)
        }
    }
    /// A batch cannot be written because the database is unavailable (nil: it was written).
    func holding(since: Date?) { state.withLock { $0.heldSince = since } }

    /// Seconds the current batch has been held by an outage, 0 when none is.
    var heldSeconds: Double { state.withLock { $0.heldSince.map { Date().timeIntervalSince($0) } ?? 0 } }

    var kafkaHealthy: Bool { state.withLock { $0.kafkaError.map { Date().timeIntervalSince($0) > 10 } ?? true } }
    var deadLetterCount: Int { state.withLock { $0.deadLettered } }

    /// `/gpu/info`: the newest sample (by event time) of every GPU as a JSON object keyed by UUID.
    func gpuInfo() -> String {
        state.withLock { s in
            "{" + s.latest.sorted { $0.key < $1.key }.map { "\"\($0.key)\":" + String(decoding: $0.value.sample, as: UTF8.self) }.joined(separator: ",") + "}"
        }
    }

    /// A label value with `\`, `"` and newlines escaped, as the text format wants.
    static func label(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// `/metrics` in the Prometheus text format (HELP and TYPE on every family, so that
    /// `promtool check metrics` passes); `lag` is the consumer's per-partition lag now.
    func prometheus(lag: [TopicPartition: Int64] = [:]) -> String {
        func family(_ name: String, _ type: String, _ help: String, _ samples: [String]) -> [String] {
            ["# HELP \(name) \(help)", "# TYPE \(name) \(type)"] + samples
        }
        let perPartition = lag.sorted { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }
            .map { "processor_consumer_lag{topic=\"\($0.key.topic)\",partition=\"\($0.key.partition)\"} \($0.value)" }
        return state.withLock { s in
            var lines = family("processor_consumed_total", "counter", "Records consumed from Kafka, per topic.",
                               s.consumed.sorted { $0.key < $1.key }.map { "processor_consumed_total{topic=\"\($0.key)\"} \($0.value)" })
            lines += family("processor_written_total", "counter", "Documents newly written to MongoDB, per source topic.",
                            s.written.sorted { $0.key < $1.key }.map { "processor_written_total{topic=\"\($0.key)\"} \($0.value)" })
            lines += family("processor_dead_lettered_total", "counter", "Records sent to the dead-letter topic (refused by validation or by the database).",
                            ["processor_dead_lettered_total \(s.deadLettered)"])
            lines += family("processor_write_failures_total", "counter", "Failed attempts to write to MongoDB or the dead-letter topic (each is retried).",
                            ["processor_write_failures_total \(s.writeFailures)"])
            lines += family("processor_batch_size", "histogram", "Records per batch.", [s.batchSizes.render("processor_batch_size")])
            lines += family("processor_write_latency_seconds", "histogram", "Time from a batch's hand-over to its commit.",
                            [s.writeSeconds.render("processor_write_latency_seconds")])
            lines += family("processor_end_to_end_latency_seconds", "histogram", "From an event's own timestamp to its received_at.",
                            [s.endToEndSeconds.render("processor_end_to_end_latency_seconds")])
            lines += family("processor_gpus", "gauge", "GPUs with at least one stored sample.", ["processor_gpus \(s.latest.count)"])
            let gpus = s.latest.sorted { $0.key < $1.key }.map(\.value.values)
            func perGPU(_ name: String, _ help: String, _ value: (GPURollups.Sample) -> Double) -> [String] {
                family(name, "gauge", help, gpus.map { "\(name){gpu=\"\(Self.label($0.gpu))\",node=\"\(Self.label($0.node))\"} \(value($0))" })
            }
            lines += perGPU("processor_gpu_utilisation_percent", "GPU utilisation of each GPU's newest sample (DCGM_FI_DEV_GPU_UTIL).") { $0.utilisation }
            lines += perGPU("processor_gpu_temperature_celsius", "GPU temperature of each GPU's newest sample (DCGM_FI_DEV_GPU_TEMP).") { $0.temperature }
            lines += perGPU("processor_gpu_power_watts", "Power draw of each GPU's newest sample (DCGM_FI_DEV_POWER_USAGE).") { $0.power }
            lines += perGPU("processor_gpu_xid_errors", "XID errors reported in each GPU's newest sample (DCGM_FI_DEV_XID_ERRORS).") { $0.xid }
            lines += family("processor_batch_held_seconds", "gauge", "How long the current batch has waited for an unavailable database (0: none).",
                            ["processor_batch_held_seconds \(s.heldSince.map { Date().timeIntervalSince($0) } ?? 0)"])
            lines += family("processor_consumer_lag", "gauge", "Records not yet committed, per partition.", perPartition)
            lines += family("processor_consumer_lag_records", "gauge", "Records not yet committed, all partitions together.",
                            ["processor_consumer_lag_records \(lag.values.reduce(0, +))"])
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
