import ArgumentParser
import Foundation
import JSON
import Synchronization
import WorkloadKit

/// `producer`: emits GPU telemetry (DCGM field names) to `gpu.metrics.v1` and LLM token-usage
/// events to `token.usage.v1`, keyed by GPU UUID and request id. Every option also reads an
/// environment variable (for the Kubernetes ConfigMap); flags win.
@main
struct ProducerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "producer",
        abstract: "Emit GPU telemetry and LLM token-usage events to Kafka.",
        discussion: """
            Events alternate: one GPU sample (GPUs in turn), then one token-usage event. GPU samples come
            from the machine's GPUs through NVML (libnvidia-ml.so.1, loaded at run time) when one can be
            read, otherwise from a seeded synthetic fleet (load cycles, thermal lag, power tracking
            utilisation); --source forces one.
            Ends after --count events or --duration seconds (never with --continuous), or on SIGINT/SIGTERM,
            then flushes and prints a JSON summary. Exit code 1 if any message was not delivered.
            Every event carries producer_run (<node>-<start epoch ms>-<4 hex>, unique per start) and event_seq
            (0, 1, 2, ... within the run). With --state-file, the run's counts (produced, acknowledged by the
            broker, failed, ended) are written there at most every 500 ms and once at exit, next to the runs
            of earlier starts. A topic that does not exist is never created: its messages fail after
            --message-timeout-ms unless it is created meanwhile.
            Time: paced runs (--rate) stamp events with the wall clock. Unpaced runs simulate it: each GPU
            is sampled once per --sample-period seconds of simulated time, and a run bounded by --count
            ends at the moment it started, so a burst still looks like a fleet sampled over time.
            Containers: --continuous (the image sets CONTINUOUS=1, as the seeds' producers loop) runs paced,
            at \(Self.continuousRate) events/s unless --rate says otherwise.
            """
    )

    static func env(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }

    @Option(help: "Kafka bootstrap servers (env KAFKA_BROKERS).")
    var brokers = env("KAFKA_BROKERS") ?? "127.0.0.1:9092"

    @Option(help: "Topic for GPU samples (env METRICS_TOPIC).")
    var metricsTopic = env("METRICS_TOPIC") ?? "gpu.metrics.v1"

    @Option(help: "Topic for token-usage events (env TOKENS_TOPIC).")
    var tokensTopic = env("TOKENS_TOPIC") ?? "token.usage.v1"

    @Option(help: "GPU samples from: auto (NVML if a GPU can be read, else synthetic), nvml, synthetic (env GPU_SOURCE).")
    var source = GPUSource(rawValue: env("GPU_SOURCE") ?? "") ?? .auto

    @Option(help: "The NVML library to load (env NVML_LIBRARY).")
    var nvmlLibrary = env("NVML_LIBRARY") ?? "libnvidia-ml.so.1"

    @Option(help: "Simulated GPUs of the synthetic source (env GPU_COUNT).")
    var gpus = Int(env("GPU_COUNT") ?? "") ?? 8

    @Option(help: "Events per second, 0 for as fast as possible; with --continuous, unset means \(Self.continuousRate) (env RATE).")
    var rate: Double? = Double(env("RATE") ?? "")

    /// The pace of `--continuous` without `--rate`: what the container image runs.
    static let continuousRate = 200.0

    @Option(help: "Simulated seconds between two samples of one GPU in unpaced runs (env SAMPLE_PERIOD).")
    var samplePeriod = Double(env("SAMPLE_PERIOD") ?? "") ?? 1

    @Option(help: "Stop after this many events, 0 for no limit (env EVENT_COUNT).")
    var count = Int(env("EVENT_COUNT") ?? "") ?? 1000

    @Option(help: "Stop after this many seconds (env DURATION_SECONDS).")
    var duration: Double? = Double(env("DURATION_SECONDS") ?? "")

    @Flag(help: "Run until stopped, ignoring --count and --duration (env CONTINUOUS=1).")
    var continuous = env("CONTINUOUS") == "1"

    @Option(help: "Seed of the synthetic fleet (env SEED).")
    var seed = UInt64(env("SEED") ?? "") ?? 42

    @Option(help: "Node name in events (env NODE_NAME, default the host name).")
    var node = env("NODE_NAME") ?? ProcessInfo.processInfo.hostName

    @Option(help: "librdkafka batch size (batch.num.messages).")
    var batchSize = Int(env("BATCH_SIZE") ?? "") ?? 10_000

    @Option(help: "How long librdkafka keeps trying to deliver a message (env MESSAGE_TIMEOUT_MS).")
    var messageTimeoutMs = Int(env("MESSAGE_TIMEOUT_MS") ?? "") ?? 30_000

    @Option(help: "How long librdkafka waits to fill a batch before sending it (linger.ms; env LINGER_MS). A broker that pays per request (Tansu on an object store) wants a longer one.")
    var lingerMs = Int(env("LINGER_MS") ?? "") ?? 5

    @Option(help: "Idempotent delivery (enable.idempotence; env IDEMPOTENT, true or false). Off, a retry after a broker crash may write an event twice, which the processor stores once by its producer_run and event_seq; against Tansu 0.6.0 on S3 turn it off: Tansu records the producer's sequence before it writes the batch, so a retry after a kill between the two is answered 'duplicate' and counted as delivered while the broker never wrote it.")
    var idempotent = Bool(env("IDEMPOTENT") ?? "") ?? true

    @Option(help: "Write each run's produced, acknowledged and failed counts to this JSON file, keeping earlier runs (env STATE_FILE).")
    var stateFile: String? = env("STATE_FILE")

    /// NVML's GPUs, or the synthetic fleet; `auto` says on stderr which one it chose and why.
    func openFleet(random: SeededRandom) throws -> any GPUFleet {
        let synthetic = { SyntheticFleet(count: gpus, node: node, random: random) }
        switch source {
        case .synthetic:
            return synthetic()
        case .nvml:
            do {
                return try NVMLFleet(library: nvmlLibrary, node: node)
            } catch {
                throw ValidationError("--source nvml: \(error); use --source auto or synthetic on machines without an NVIDIA GPU")
            }
        case .auto:
            do {
                let fleet = try NVMLFleet(library: nvmlLibrary, node: node)
                FileHandle.standardError.write(Data("producer: reading \(fleet.uuids.count) GPU(s) through NVML\n".utf8))
                return fleet
            } catch {
                FileHandle.standardError.write(Data("producer: no GPU through NVML (\(error)); using \(gpus) synthetic GPUs\n".utf8))
                return synthetic()
            }
        }
    }

    func validate() throws {
        guard gpus > 0 else { throw ValidationError("--gpus must be at least 1") }
        guard (rate ?? 0) >= 0, count >= 0 else { throw ValidationError("--rate and --count cannot be negative") }
        guard samplePeriod > 0 else { throw ValidationError("--sample-period must be positive") }
    }

    func run() throws {
        let producer = try KafkaProducer(brokers: brokers, settings: [
            "batch.num.messages": String(batchSize), "message.timeout.ms": String(messageTimeoutMs),
            "linger.ms": String(lingerMs), "enable.idempotence": String(idempotent), "acks": "all",
        ])
        try producer.open([metricsTopic, tokensTopic])
        var random = SeededRandom(seed: seed)
        let fleet = try openFleet(random: random)
        let gpus = fleet.uuids.count
        let shutdown = ShutdownSignal()

        let started = Date()
        let run = ProducerRun(node: node, started: started)
        let state = try stateFile.map { try ProducerStateFile(path: $0, node: node, run: run.id) }
        let rate = rate ?? (continuous ? Self.continuousRate : 0)
        // Unpaced: a simulated clock, one sample period per round of GPUs, ending now for a counted run.
        let rounds = !continuous && count > 0 ? Double(count / (2 * gpus)) : 0
        let simulatedStart = started.timeIntervalSince1970 - rounds * samplePeriod
        var lastSample = [Double](repeating: (rate > 0 ? started.timeIntervalSince1970 : simulatedStart) - samplePeriod, count: gpus)
        var produced = [metricsTopic: 0, tokensTopic: 0]
        var sequence = 0
        var finished = false
        /// Produces the event due now, or waits a little for it; sets `finished` when the run is over.
        func produceNext() throws {
            let elapsed = Date().timeIntervalSince(started)
            if !continuous {
                if count > 0 && sequence >= count { finished = true; return }
                if let duration, elapsed >= duration { finished = true; return }
            }
            if rate > 0 {
                let due = Double(sequence) / rate
                if due > elapsed { Thread.sleep(forTimeInterval: min(due - elapsed, 0.1)); return }
            }
            let now = rate > 0 ? started.timeIntervalSince1970 + elapsed : simulatedStart + Double(sequence / (2 * gpus)) * samplePeriod
            if sequence % 2 == 0 {
                let index = (sequence / 2) % gpus
                let json = fleet.sample(index, at: now, step: max(0.001, now - lastSample[index]))
                lastSample[index] = now
                try producer.produce(topic: metricsTopic, key: fleet.uuids[index], payload: run.stamp(json, sequence: sequence))
                produced[metricsTopic]! += 1
            } else {
                let gpu = fleet.uuids[(sequence / 2) % gpus]
                let event = TokenUsage.event(sequence: sequence / 2, node: node, gpu: gpu, time: now, random: &random)
                try producer.produce(topic: tokensTopic, key: event.key, payload: run.stamp(event.json, sequence: sequence))
                produced[tokensTopic]! += 1
            }
            sequence += 1
        }
        var stall = DeliveryStall(limit: .seconds(messageTimeoutMs / 1000 + 5))
        var sentFirst = false
        do {
            while !shutdown.isRequested && !finished {
                // Delivery reports are served on every turn: the state file's acknowledged count stays current.
                producer.poll()
                let acknowledged = producer.stats.delivered.load(ordering: .relaxed), failed = producer.stats.failed.load(ordering: .relaxed)
                try state?.writeIfDue(produced: sequence, acknowledged: acknowledged, failed: failed)
                // A client whose topics were deleted and created again can keep failing every
                // message (librdkafka holds on to the old topic); a running service starts afresh.
                if continuous, stall.stalled(acknowledged: acknowledged, failed: failed) {
                    let reason = producer.stats.lastError.withLock { $0 } ?? "unknown"
                    FileHandle.standardError.write(Data("producer: no message delivered and \(failed) failed for \(stall.limit) (last error: \(reason)); exiting so that the service manager starts a fresh client\n".utf8))
                    throw ExitCode(3)
                }
                try produceNext()
                // The first event of each topic goes at once, not after a linger (3 s with the
                // durable broker): a producer that starts shows in the pipeline within a second.
                if !sentFirst, produced.values.allSatisfy({ $0 > 0 }) {
                    sentFirst = true
                    producer.flush(timeout: .seconds(2))
                }
            }
        } catch {
            try? state?.update(produced: sequence, acknowledged: producer.stats.delivered.load(ordering: .relaxed),
                               failed: producer.stats.failed.load(ordering: .relaxed), ended: false)
            throw error
        }

        let undelivered = producer.flush(timeout: .seconds(30))
        let seconds = Date().timeIntervalSince(started)
        let delivered = producer.stats.delivered.load(ordering: .relaxed)
        let failed = producer.stats.failed.load(ordering: .relaxed) + undelivered
        try state?.update(produced: sequence, acknowledged: delivered, failed: failed, ended: undelivered == 0)
        let summary: JSONValue = [
            "produced": .object(produced.mapValues(JSONValue.int)), "delivered": .int(delivered), "producer_run": .string(run.id), "failed": .int(failed),
            "seconds": .number((seconds * 1000).rounded() / 1000), "rate": .int(seconds > 0 ? Int(Double(delivered) / seconds) : 0),
            "last_error": .string(producer.stats.lastError.withLock { $0 }),
        ]
        print(String(decoding: summary.compactData, as: UTF8.self))
        if failed > 0 {
            FileHandle.standardError.write(Data("producer: \(failed) messages were not delivered; check that the brokers at \(brokers) are reachable and that \(metricsTopic) and \(tokensTopic) exist (producers never create topics)\n".utf8))
            throw ExitCode(1)
        }
    }
}
extension GPUSource: ExpressibleByArgument {}
