import ArgumentParser
import Foundation
import JSON
import Synchronization
import WorkloadKit

/// `processor`: consumes `gpu.metrics.v1` and `token.usage.v1` into MongoDB in batches, with a
/// deterministic `_id` (the event's own `event/<producer_run>/<event_seq>` when it carries them,
/// else its Kafka coordinates `topic/topicID/partition/offset`, see `ConsumedRecord.documentID`)
/// and offsets committed only after the batch is durable; malformed records go to a dead-letter topic with the reason. Serves /health, /ready,
/// /metrics, /gpu/info and /stats.
@main
struct ProcessorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor",
        abstract: "Consume pipeline events from Kafka into MongoDB, losing and duplicating nothing.",
        discussion: """
            At-least-once delivery plus idempotent writes: a record redelivered after a crash maps to the same _id and is ignored as a duplicate. The _id is the event's own identity, event/<producer_run>/<event_seq>, when it carries one in the producers' form, so an event the broker holds twice (a producer's retry) is stored once; otherwise it is the record's Kafka coordinates with the topic's incarnation (its topic id), so records of a topic deleted and created again are stored, not taken for duplicates. MongoDB or Kafka outages are retried with backoff; the
            batch is kept and offsets are not committed until it is written. A record that is not a valid
            event, or that the database refuses for its content, goes to the dead-letter topic byte for byte
            with the reason in its headers and never holds the batch. SIGINT/SIGTERM: stop fetching, finish
            or abandon (uncommitted, redelivered later) the batch in hand, commit, exit 0.
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

    @Option(help: "Largest dead-letter value copied byte for byte; a larger record's dead letter carries a reference and its SHA-256 (env DEAD_LETTER_MAX_BYTES).")
    var deadLetterMaxBytes = Int(env("DEAD_LETTER_MAX_BYTES") ?? "") ?? 900_000
    @Option(help: "/ready answers 503 once a batch has waited this many seconds for an unavailable database (env READY_HELD_SECONDS).")
    var readyHeldSeconds = Double(env("READY_HELD_SECONDS") ?? "") ?? 30

    var collections: [String: String] { [metricsTopic: "gpu_metrics", tokensTopic: "token_usage"] }

    func validate() throws {
        guard batchSize > 0, batchWaitMs >= 0 else { throw ValidationError("--batch-size must be at least 1 and --batch-wait-ms not negative") }
        guard (1024...(10 << 20)).contains(deadLetterMaxBytes) else { throw ValidationError("--dead-letter-max-bytes must be between 1024 and 10485760") }
    }

    func run() throws {
        let shutdown = ShutdownSignal()
        let metrics = ProcessorMetrics(topics: [metricsTopic, tokensTopic])
        let mongo = try MongoStore(uri: mongoURI, database: database)
        let stats = try MongoStore(uri: mongoURI, database: database)  // the HTTP thread's own client
        let lag = Mutex<(@Sendable () -> [TopicPartition: Int64])?>(nil)
        let server = try HTTPServer(host: httpHost, port: httpPort) { [collections, readyHeldSeconds] path in
            Self.respond(path, metrics: metrics, stats: stats, collections: collections, readyHeldSeconds: readyHeldSeconds,
                         lag: lag.withLock { $0 }?() ?? [:])
        }
        server.start()
        FileHandle.standardError.write(Data("processor: serving http://\(httpHost):\(server.port)\n".utf8))

        let indexed = Backoff(metrics: metrics, shutdown: shutdown).retrying("create indexes") {
            try mongo.ensureIndex("gpu_metrics", keys: ["gpu_uuid", "timestamp"])
            try mongo.ensureIndex("token_usage", keys: ["request_id"])
            if retentionDays > 0 {
                for collection in collections.values { try mongo.ensureIndex(collection, keys: ["received_at"], expireAfterSeconds: retentionDays * 86400) }
            }
        }
        guard indexed else {
            FileHandle.standardError.write(Data("processor: stopped before the database was ready\n".utf8))
            return
        }
        let settings = Dictionary(kafka.compactMap { pair -> (String, String)? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        let consumer = try KafkaConsumer(brokers: brokers, group: group, topics: [metricsTopic, tokensTopic], settings: settings)
        lag.withLock { $0 = { consumer.lag() } }
        let deadLetters = try KafkaProducer(brokers: brokers)
        try deadLetters.open([deadLetterTopic])
        let pipeline = BatchPipeline(
            settings: .init(metricsTopic: metricsTopic, collections: collections, deadLetterTopic: deadLetterTopic,
                            deadLetterLimit: deadLetterMaxBytes, batchSize: batchSize, batchWait: Double(batchWaitMs) / 1000),
            consumer: consumer, deadLetters: deadLetters, inserts: mongo, rollups: try MongoStore(uri: mongoURI, database: database),
            validator: RecordValidator(metricsTopic: metricsTopic, tokensTopic: tokensTopic), metrics: metrics, shutdown: shutdown)
        pipeline.run()
        consumer.close()
        FileHandle.standardError.write(Data("processor: stopped cleanly\n".utf8))
    }

    static func respond(_ path: String, metrics: ProcessorMetrics, stats: MongoStore, collections: [String: String],
                        readyHeldSeconds: Double, lag: @autoclosure () -> [TopicPartition: Int64]) -> (Int, String, String) {
        func json(_ object: JSONValue) -> String { String(decoding: object.compactData, as: UTF8.self) }
        switch path {
        case "/health":
            return (200, "application/json", #"{"status":"alive"}"#)
        case "/ready":
            let mongo = stats.ping()
            let kafka = metrics.kafkaHealthy
            let held = metrics.heldSeconds
            let ready = mongo && kafka && held < readyHeldSeconds
            return (ready ? 200 : 503, "application/json",
                    json(["ready": .bool(ready), "mongodb": .bool(mongo), "kafka": .bool(kafka), "batch_held_seconds": .number((held * 10).rounded() / 10)]))
        case "/metrics":
            return (200, "text/plain; version=0.0.4", metrics.prometheus(lag: lag()))
        case "/gpu/info":
            return (200, "application/json", metrics.gpuInfo())
        case "/stats":
            var counts: JSONValue = ["dead_lettered": .int(metrics.deadLetterCount)]
            for collection in collections.values + [GPURollups.collection] { counts[collection] = (try? stats.count(collection)).map(JSONValue.int) ?? .null }
            return (200, "application/json", json(counts))
        default:
            return (404, "application/json", #"{"error":"not found; try /health, /ready, /metrics, /gpu/info or /stats"}"#)
        }
    }
}
