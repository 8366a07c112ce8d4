import ArgumentParser
import Foundation
import Synchronization
import WorkloadKit

/// `processor`: consumes `gpu.metrics.v1` and `token.usage.v1` into MongoDB in batches, with a
/// deterministic `_id` (topic/partition/offset) and offsets committed only after the batch is
/// durable; malformed records go to a dead-letter topic with the reason. Serves /health, /ready,
/// /metrics, /gpu/info and /stats.
@main
struct ProcessorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor",
        abstract: "Consume pipeline events from Kafka into MongoDB, losing and duplicating nothing.",
        discussion: """
            At-least-once delivery plus idempotent writes: a record redelivered after a crash maps to the
            same _id and is ignored as a duplicate. MongoDB or Kafka outages are retried with backoff; the
            batch is kept and offsets are not committed until it is written. SIGINT/SIGTERM: stop fetching,
            finish the batch, commit, exit.
            """
    )

    static func env(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }

    @Option(help: "Kafka bootstrap servers (env KAFKA_BROKERS).")
    var brokers = env("KAFKA_BROKERS") ?? "127.0.0.1:9092"
    @Option(help: "Consumer group (env CONSUMER_GROUP).")
    var group = env("CONSUMER_GROUP") ?? "gpu-pipeline-processor"
    @Option(help: "GPU telemetry topic (env METRICS_TOPIC).")
    var metricsTopic = env("METRICS_TOPIC") ?? "gpu.metrics.v1"
    @Option(help: "Token-usage topic (env TOKENS_TOPIC).")
    var tokensTopic = env("TOKENS_TOPIC") ?? "token.usage.v1"
    @Option(help: "Dead-letter topic for malformed records (env DEAD_LETTER_TOPIC).")
    var deadLetterTopic = env("DEAD_LETTER_TOPIC") ?? "pipeline.deadletter.v1"
    @Option(help: "MongoDB URI (env MONGODB_URI).")
    var mongoURI = env("MONGODB_URI") ?? "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000"
    @Option(help: "MongoDB database (env MONGODB_DATABASE).")
    var database = env("MONGODB_DATABASE") ?? "gpu_pipeline"
    @Option(help: "Records per batch at most (env BATCH_SIZE).")
    var batchSize = Int(env("BATCH_SIZE") ?? "") ?? 1000
    @Option(help: "Longest wait to fill a batch, milliseconds (env BATCH_WAIT_MS).")
    var batchWaitMs = Int(env("BATCH_WAIT_MS") ?? "") ?? 200
    @Option(help: "Keep documents this many days (TTL index on received_at), 0 to keep forever (env RETENTION_DAYS).")
    var retentionDays = Int(env("RETENTION_DAYS") ?? "") ?? 0
    @Option(help: "HTTP address to serve on (env HTTP_HOST).")
    var httpHost = env("HTTP_HOST") ?? "127.0.0.1"
    @Option(help: "HTTP port, 0 for any free one (env HTTP_PORT).")
    var httpPort = Int(env("HTTP_PORT") ?? "") ?? 8080
    @Option(help: "Extra librdkafka consumer settings, key=value, repeatable.")
    var kafka: [String] = []

    var collections: [String: String] { [metricsTopic: "gpu_metrics", tokensTopic: "token_usage"] }

    func run() throws {
        let metrics = ProcessorMetrics()
        let mongo = try MongoStore(uri: mongoURI, database: database)
        let stats = try MongoStore(uri: mongoURI, database: database)  // the HTTP thread's own client
        let lag = Mutex<(@Sendable () -> [TopicPartition: Int64])?>(nil)
        let server = try HTTPServer(host: httpHost, port: httpPort) { [collections] path in
            Self.respond(path, metrics: metrics, stats: stats, collections: collections, lag: lag.withLock { $0 }?() ?? [:])
        }
        server.start()
        FileHandle.standardError.write(Data("processor: serving http://\(httpHost):\(server.port)\n".utf8))

        Self.retrying("create indexes", metrics: metrics) {
            try mongo.ensureIndex("gpu_metrics", keys: ["gpu_uuid", "timestamp"])
            try mongo.ensureIndex("token_usage", keys: ["request_id"])
            if retentionDays > 0 {
                for collection in collections.values { try mongo.ensureIndex(collection, keys: ["received_at"], expireAfterSeconds: retentionDays * 86400) }
            }
        }
        let settings = Dictionary(kafka.compactMap { pair -> (String, String)? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        let consumer = try KafkaConsumer(brokers: brokers, group: group, topics: [metricsTopic, tokensTopic], settings: settings)
        lag.withLock { $0 = { consumer.lag() } }
        let deadLetters = try KafkaProducer(brokers: brokers)
        let validator = RecordValidator(metricsTopic: metricsTopic, tokensTopic: tokensTopic)

        let shutdown = ShutdownSignal()

        // Three stages, each in batch order: this thread polls and prepares batch k+2 while the
        // inserter stores batch k+1's documents and the finisher adds batch k's rollups and commits
        // exactly its offsets (its own MongoDB client). The database always has the next bulk insert
        // waiting instead of idling while a batch is finished. `inFlight` bounds the batches handed
        // over and not yet committed.
        let inserter = DispatchQueue(label: "processor.insert")
        let finisher = DispatchQueue(label: "processor.finish")
        let rollups = try MongoStore(uri: mongoURI, database: database)
        let committed = Mutex<[TopicPartition: Int64]>([:])
        let depth = 2
        let inFlight = DispatchSemaphore(value: depth)
        while !shutdown.isRequested {
            var batch: [ConsumedRecord] = []
            let deadline = Date().addingTimeInterval(Double(batchWaitMs) / 1000)
            while batch.count < batchSize && Date() < deadline && !shutdown.isRequested {
                if let record = consumer.poll(timeout: 50) { batch.append(record) }
            }
            if consumer.lastError.map({ Date().timeIntervalSince($0.at) < 1 }) == true { metrics.kafkaFailed() }
            guard !batch.isEmpty else { continue }
            let prepared = try prepare(batch, deadLetters: deadLetters, validator: validator, metrics: metrics)
            inFlight.wait()
            inserter.async { [collections, deadLetterTopic] in
                let started = Date()
                let written = Self.store(prepared, mongo: mongo, deadLetters: deadLetters, deadLetterTopic: deadLetterTopic,
                                         collections: collections, metrics: metrics)
                finisher.async {
                    defer { inFlight.signal() }
                    Self.finish(prepared, written: written, since: started, mongo: rollups, consumer: consumer,
                                collections: collections, metrics: metrics)
                    committed.withLock { $0.merge(prepared.lastOffsets) { max($0, $1) } }
                }
            }
        }
        for _ in 0..<depth { inFlight.wait() }  // every batch is written and its commit sent
        for _ in 0..<depth { inFlight.signal() }  // libdispatch traps if a semaphore is freed below its initial value
        // Batches commit without waiting for the broker; the final position is committed for sure.
        Self.retrying("commit offsets", metrics: metrics, attempts: 3) { try consumer.commit(committed.withLock { $0 }, wait: true) }
        consumer.close()
        FileHandle.standardError.write(Data("processor: stopped cleanly\n".utf8))
    }

    /// A batch validated and turned into documents, with the offsets it covers.
    struct PreparedBatch: @unchecked Sendable {
        var documents: [String: [(id: String, document: BSONDocument)]] = [:]
        var rejected = 0
        var size = 0
        var lastOffsets: [TopicPartition: Int64] = [:]
        var rollupSamples: [GPURollups.Sample] = []
    }

    /// Validates, queues dead letters, and builds the documents of a batch (on the polling thread).
    private func prepare(_ batch: [ConsumedRecord], deadLetters: KafkaProducer, validator: RecordValidator,
                         metrics: ProcessorMetrics) throws -> PreparedBatch {
        var prepared = PreparedBatch()
        prepared.size = batch.count
        let receivedAt = Int(Date().timeIntervalSince1970 * 1000)
        for record in batch {
            metrics.consumed(record.topic)
            let position = TopicPartition(topic: record.topic, partition: record.partition)
            prepared.lastOffsets[position] = max(prepared.lastOffsets[position] ?? -1, record.offset)
            switch validator.validate(record) {
            case .success(let document):
                if record.topic == metricsTopic, let gpu = document.string("gpu_uuid") {
                    metrics.latest(gpu: gpu, sample: record.payload)
                    if let sample = GPURollups.Sample(document, offset: record.offset) { prepared.rollupSamples.append(sample) }
                }
                // Kafka coordinates and arrival time ride along; the payload's own fields are stored unchanged.
                document.append("_id", string: record.documentID)
                document.append("kafka_partition", int32: record.partition)
                document.append("kafka_offset", integer: record.offset)
                document.append("received_at", dateMilliseconds: Int64(receivedAt))
                prepared.documents[collections[record.topic] ?? "unknown", default: []].append((record.documentID, document))
            case .failure(let rejection):
                let letter: [String: Any] = [
                    "topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": rejection.reason,
                    "payload": String(decoding: record.payload, as: UTF8.self),
                ]
                let data = try JSONSerialization.data(withJSONObject: letter, options: [.sortedKeys])
                try deadLetters.produce(topic: deadLetterTopic, key: record.documentID, payload: String(decoding: data, as: UTF8.self))
                prepared.rejected += 1
            }
        }
        return prepared
    }

    /// Makes a prepared batch's records durable: dead letters acknowledged, documents written.
    /// Runs on the inserter queue; retries until it succeeds.
    /// - Returns: documents newly written per collection.
    private static func store(_ prepared: PreparedBatch, mongo: MongoStore, deadLetters: KafkaProducer,
                              deadLetterTopic: String, collections: [String: String], metrics: ProcessorMetrics) -> [String: Int] {
        if prepared.rejected > 0 {
            retrying("deliver dead letters", metrics: metrics) {
                let before = deadLetters.stats.failed.load(ordering: .relaxed)
                guard deadLetters.flush(timeout: .seconds(10)) == 0, deadLetters.stats.failed.load(ordering: .relaxed) == before else {
                    throw KafkaError("dead-letter topic \(deadLetterTopic) did not acknowledge")
                }
            }
            for _ in 0..<prepared.rejected { metrics.deadLettered() }
        }
        var written: [String: Int] = [:]
        for (collection, docs) in prepared.documents {
            retrying("write \(docs.count) documents to \(collection)", metrics: metrics) {
                written[collection] = try mongo.insert(docs, into: collection)
            }
        }
        return written
    }

    /// Adds a stored batch to the rollups, then commits its offsets. Runs on the finisher queue,
    /// in batch order (the rollup marks need it); retries the rollups until they succeed.
    private static func finish(_ prepared: PreparedBatch, written: [String: Int], since started: Date, mongo: MongoStore,
                               consumer: KafkaConsumer, collections: [String: String], metrics: ProcessorMetrics) {
        // Before the commit: a crash here redelivers the batch, and the rollup marks skip what was counted.
        retrying("update \(GPURollups.collection)", metrics: metrics) { try GPURollups.apply(prepared.rollupSamples, mongo: mongo) }
        let topics = Dictionary(uniqueKeysWithValues: collections.map { ($0.value, $0.key) })
        metrics.batch(size: prepared.size, seconds: Date().timeIntervalSince(started),
                      written: Dictionary(written.map { (topics[$0.key] ?? $0.key, $0.value) }, uniquingKeysWith: +))
        // The batch is durable: a failed commit only means redelivery, which the _id makes harmless.
        retrying("commit offsets", metrics: metrics, attempts: 3) { try consumer.commit(prepared.lastOffsets, wait: false) }
    }

    /// Repeats `body` with exponential backoff (100 ms to 5 s) until it succeeds, or gives up after
    /// `attempts` when given.
    static func retrying(_ what: String, metrics: ProcessorMetrics, attempts: Int = .max, _ body: () throws -> Void) {
        var delay = 0.1
        for attempt in 1...attempts {
            do {
                return try body()
            } catch {
                metrics.writeFailed()
                let next = attempt == attempts ? "giving up" : "retrying in \(delay)s"
                FileHandle.standardError.write(Data("processor: \(what) failed (\(error)); \(next)\n".utf8))
                if attempt == attempts { return }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 5)
            }
        }
    }

    static func respond(_ path: String, metrics: ProcessorMetrics, stats: MongoStore, collections: [String: String],
                        lag: @autoclosure () -> [TopicPartition: Int64]) -> (Int, String, String) {
        func json(_ object: Any) -> String {
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        switch path {
        case "/health":
            return (200, "application/json", #"{"status":"alive"}"#)
        case "/ready":
            let mongo = stats.ping()
            let kafka = metrics.kafkaHealthy
            return (mongo && kafka ? 200 : 503, "application/json", json(["ready": mongo && kafka, "mongodb": mongo, "kafka": kafka]))
        case "/metrics":
            return (200, "text/plain; version=0.0.4", metrics.prometheus(lag: lag()))
        case "/gpu/info":
            return (200, "application/json", metrics.gpuInfo())
        case "/stats":
            var counts: [String: Any] = ["dead_lettered": metrics.deadLetterCount]
            for collection in collections.values + [GPURollups.collection] { counts[collection] = (try? stats.count(collection)) ?? NSNull() }
            return (200, "application/json", json(counts))
        default:
            return (404, "application/json", #"{"error":"not found; try /health, /ready, /metrics, /gpu/info or /stats"}"#)
        }
    }
}
