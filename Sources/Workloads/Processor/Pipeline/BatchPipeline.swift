import Foundation
import Synchronization
import WorkloadKit

/// The processor's three stages, each in batch order: the polling thread validates and prepares
/// batch k+2 while the inserter stores batch k+1 (documents, then dead letters) and the finisher
/// adds batch k's rollups and commits exactly its offsets (on its own MongoDB client). The database
/// always has the next bulk insert waiting instead of idling while a batch is finished.
///
/// Every record ends stored or dead-lettered, whatever its bytes, its size or the database's
/// answer about it; only an outage (database or dead-letter topic unavailable) holds a batch, and
/// then with backoff. A stop request abandons the held batch uncommitted (it is redelivered) and
/// every batch behind it.
final class BatchPipeline: @unchecked Sendable {  // stages touch their own state on their own queue
    struct Settings {
        let metricsTopic: String
        let collections: [String: String]
        let deadLetterTopic: String
        let deadLetterLimit: Int
        let batchSize: Int
        let batchWait: TimeInterval
    }

    /// A batch validated and turned into documents, with the offsets it covers.
    struct PreparedBatch: @unchecked Sendable {  // owned by one stage at a time
        var documents: [String: [(id: String, document: BSONDocument, record: ConsumedRecord)]] = [:]
        var deadLetters: [DeadLetter] = []
        var size = 0
        var lastOffsets: [TopicPartition: Int64] = [:]
        var rollupSamples: [GPURollups.Sample] = []
    }

    private let settings: Settings
    private let consumer: KafkaConsumer
    private let deadLetters: KafkaProducer
    private let inserts: MongoStore
    private let rollups: MongoStore
    private let validator: RecordValidator
    private let metrics: ProcessorMetrics
    private let shutdown: ShutdownSignal
    private let backoff: Backoff
    private let inserter = DispatchQueue(label: "processor.insert")
    private let finisher = DispatchQueue(label: "processor.finish")
    private let committed = Mutex<[TopicPartition: Int64]>([:])
    /// Set when a batch was abandoned: no later batch may be stored or committed in this process.
    private let abandoned = Atomic<Bool>(false)
    private let depth = 2

    init(settings: Settings, consumer: KafkaConsumer, deadLetters: KafkaProducer, inserts: MongoStore, rollups: MongoStore,
         validator: RecordValidator, metrics: ProcessorMetrics, shutdown: ShutdownSignal) {
        self.settings = settings
        self.consumer = consumer
        self.deadLetters = deadLetters
        self.inserts = inserts
        self.rollups = rollups
        self.validator = validator
        self.metrics = metrics
        self.shutdown = shutdown
        backoff = Backoff(metrics: metrics, shutdown: shutdown)
    }

    /// Polls, prepares and hands over batches until a stop is requested, then waits for the stages
    /// and commits the final position of every finished batch.
    func run() {
        let inFlight = DispatchSemaphore(value: depth)  // batches handed over and not yet committed
        while !shutdown.isRequested {
            var batch: [ConsumedRecord] = []
            let deadline = Date().addingTimeInterval(settings.batchWait)
            while batch.count < settings.batchSize && Date() < deadline && !shutdown.isRequested {
                if let record = consumer.poll(timeout: 50) { batch.append(record) }
            }
            if consumer.lastError.map({ Date().timeIntervalSince($0.at) < 1 }) == true { metrics.kafkaFailed() }
            guard !batch.isEmpty else { continue }
            let prepared = prepare(batch)
            inFlight.wait()
            inserter.async { [self] in
                let started = Date()
                guard !abandoned.load(ordering: .relaxed), let written = store(prepared) else {
                    abandoned.store(true, ordering: .relaxed)
                    inFlight.signal()
                    return
                }
                finisher.async { [self] in
                    defer { inFlight.signal() }
                    guard finish(prepared, written: written, since: started) else { abandoned.store(true, ordering: .relaxed); return }
                    committed.withLock { $0.merge(prepared.lastOffsets) { max($0, $1) } }
                }
            }
        }
        for _ in 0..<depth { inFlight.wait() }  // every batch is finished or abandoned
        for _ in 0..<depth { inFlight.signal() }  // libdispatch traps if a semaphore is freed below its initial value
        if abandoned.load(ordering: .relaxed) {
            FileHandle.standardError.write(Data("processor: stopping with a batch not written; it will be delivered again\n".utf8))
        }
        // Batches commit without waiting for the broker; the final position is committed for sure.
        Backoff(metrics: metrics).retrying("commit offsets", attempts: 3) { try consumer.commit(committed.withLock { $0 }, wait: true) }
    }

    /// Validates a batch and builds its documents (on the polling thread).
    private func prepare(_ batch: [ConsumedRecord]) -> PreparedBatch {
        var prepared = PreparedBatch()
        prepared.size = batch.count
        let receivedAt = Int64(Date().timeIntervalSince1970 * 1000)
        for record in batch {
            metrics.consumed(record.topic)
            let position = TopicPartition(topic: record.topic, partition: record.partition)
            prepared.lastOffsets[position] = max(prepared.lastOffsets[position] ?? -1, record.offset)
            switch validator.validate(record) {
            case .success(let event):
                let document = event.document
                metrics.endToEnd(seconds: Double(receivedAt - event.milliseconds) / 1000)
                if record.topic == settings.metricsTopic, let sample = GPURollups.Sample(document, milliseconds: event.milliseconds, offset: record.offset, topicID: record.topicID) {
                    metrics.latest(sample, milliseconds: event.milliseconds, sample: record.payload)
                    prepared.rollupSamples.append(sample)
                }
                // The event's own identity, else its Kafka coordinates, is the `_id` (`ProcessorCommand`);
                // coordinates, event and arrival time ride along; the payload's own fields are stored unchanged.
                let id = event.identity.map { "event/\($0)" } ?? record.documentID
                document.append("_id", string: id)
                if let topicID = record.topicID { document.append("kafka_topic_id", string: topicID) }
                document.append("kafka_partition", int32: record.partition)
                document.append("kafka_offset", integer: record.offset)
                document.append("event_time", dateMilliseconds: event.milliseconds)
                document.append("received_at", dateMilliseconds: receivedAt)
                prepared.documents[settings.collections[record.topic] ?? "unknown", default: []].append((id, document, record))
            case .failure(let rejection):
                prepared.deadLetters.append(DeadLetter(record: record, reason: rejection.reason))
            }
        }
        return prepared
    }

    /// Makes a prepared batch's records durable: documents written, then the dead letters of what
    /// validation or the database refused, acknowledged by the broker. Retries outages; nil when
    /// a stop was requested first.
    /// - Returns: documents newly written per collection.
    private func store(_ batch: PreparedBatch) -> [String: Int]? {
        var prepared = batch
        var written: [String: Int] = [:]
        for (collection, docs) in prepared.documents {
            var outcome = MongoStore.InsertOutcome()
            var heldSince: Date?
            let stored = backoff.retrying("write \(docs.count) documents to \(collection)") {
                do {
                    outcome = try inserts.insert(docs.map { ($0.id, $0.document) }, into: collection)
                } catch {
                    if heldSince == nil { heldSince = Date(); metrics.holding(since: heldSince) }
                    throw error
                }
            }
            metrics.holding(since: nil)
            guard stored else { return nil }
            written[collection] = outcome.inserted
            prepared.deadLetters += outcome.refused.map { DeadLetter(record: docs[$0.index].record, reason: $0.reason) }
        }
        guard !prepared.deadLetters.isEmpty else { return written }
        let sent = backoff.retrying("deliver \(prepared.deadLetters.count) dead letters to \(settings.deadLetterTopic)") {
            let before = deadLetters.stats.failed.load(ordering: .relaxed)
            for letter in prepared.deadLetters {
                let message = letter.message(limit: settings.deadLetterLimit)
                try deadLetters.produce(topic: settings.deadLetterTopic, key: message.key, value: message.value, headers: message.headers)
            }
            guard deadLetters.flush(timeout: .seconds(10)) == 0, deadLetters.stats.failed.load(ordering: .relaxed) == before else {
                throw KafkaError("dead-letter topic \(settings.deadLetterTopic) did not acknowledge: \(deadLetters.stats.lastError.withLock { $0 } ?? "timeout")")
            }
        }
        guard sent else { return nil }
        for _ in prepared.deadLetters { metrics.deadLettered() }
        return written
    }

    /// Adds a stored batch to the rollups, then commits its offsets. Runs on the finisher queue,
    /// in batch order (the rollup marks need it); false when a stop was requested first.
    private func finish(_ prepared: PreparedBatch, written: [String: Int], since started: Date) -> Bool {
        // Before the commit: a crash here redelivers the batch, and the rollup marks skip what was counted.
        guard backoff.retrying("update \(GPURollups.collection)", { try GPURollups.apply(prepared.rollupSamples, mongo: rollups) }) else { return false }
        let topics = Dictionary(uniqueKeysWithValues: settings.collections.map { ($0.value, $0.key) })
        metrics.batch(size: prepared.size, seconds: Date().timeIntervalSince(started),
                      written: Dictionary(written.map { (topics[$0.key] ?? $0.key, $0.value) }, uniquingKeysWith: +))
        // The batch is durable: a failed commit only means redelivery, which the _id makes harmless.
        Backoff(metrics: metrics).retrying("commit offsets", attempts: 3) { try consumer.commit(prepared.lastOffsets, wait: false) }
        return true
    }
}
