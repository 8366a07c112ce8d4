import CRdKafka
import Foundation
import Synchronization

/// One record as consumed, its bytes exactly as the broker holds them.
public struct ConsumedRecord: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    /// The key's bytes; nil when the record has none.
    public let key: [UInt8]?
    /// The value's bytes; nil for a tombstone (no value at all), empty for an empty value.
    public let value: [UInt8]?
    /// The record's timestamp (milliseconds since the epoch), when the broker gave one.
    public let timestamp: Int64?
    /// The id of the topic's incarnation the record belongs to (URL-safe base64, 22 characters),
    /// nil when it could not be read (see `TopicIncarnations`).
    public let topicID: String?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, timestamp: Int64?, topicID: String? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.topicID = topicID
    }

    /// The value's bytes, empty for a tombstone.
    public var payload: [UInt8] { value ?? [] }

    /// The record's Kafka coordinates as a document id, `topic/topicID/partition/offset` (the
    /// processor uses it for events without an identity of their own): a redelivered record maps
    /// to the same id, and a record of a topic deleted and created again (offsets restarting at 0)
    /// does not collide with one of the earlier incarnation. Without a topic id (a librdkafka
    /// older than 2.3, or a failed lookup) it is the older `topic/partition/offset`, which does.
    public var documentID: String {
        guard let topicID else { return "\(topic)/\(partition)/\(offset)" }
        return "\(topic)/\(topicID)/\(partition)/\(offset)"
    }
}

/// A topic and partition, for commits.
public struct TopicPartition: Hashable, Sendable {
    public let topic: String
    public let partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
}

/// Owns one librdkafka group consumer with manual commits: the owner commits only after what it
/// consumed is durable elsewhere. Use from one thread.
///
/// Every record carries its topic's incarnation id (`ConsumedRecord.topicID`). The ids are read at
/// start, on every partition assignment, and whenever a partition's offset goes backwards (the
/// log was reset: a topic created again), before that record is handed out. A partition assigned
/// again whose topic's id changed since it was last read starts from the beginning of the new log:
/// the committed offsets belong to the earlier incarnation.
public final class KafkaConsumer: @unchecked Sendable {  // poll from one thread; commit is thread-safe
    private let handle: OpaquePointer
    private let group: GroupState
    private let committed = Mutex<[TopicPartition: Int64]>([:])
    /// The last transport-level error and when it happened, for readiness.
    public private(set) var lastError: (message: String, at: Date)?

    /// Joins `group` and subscribes to `topics`; offsets reset to the earliest when none is committed.
    public init(brokers: String, group: String, topics: [String], settings: [String: String] = [:]) throws {
        let conf = rd_kafka_conf_new()!
        let defaults = [
            "bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": "false",
            "auto.offset.reset": "earliest", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500",
            "enable.partition.eof": "false",
            // Only the topics job creates topics; a topic created again is seen within 5 s.
            "allow.auto.create.topics": "false", "topic.metadata.refresh.interval.ms": "5000",
        ]
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in defaults.merging(settings, uniquingKeysWith: { $1 }) {
            guard rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError("Kafka setting \(key)=\(value) rejected: \(String(cString: errstr))")
            }
        }
        let group = GroupState(incarnations: TopicIncarnations(topics: topics))
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(group).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { client, err, partitions, opaque in
            guard let client, let opaque else { return }
            Unmanaged<GroupState>.fromOpaque(opaque).takeUnretainedValue().rebalance(client, err, partitions)
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errstr, errstr.count) else {
            throw KafkaError("cannot create the Kafka consumer: \(String(cString: errstr))")
        }
        self.handle = handle
        self.group = group
        rd_kafka_poll_set_consumer(handle)
        group.incarnations.refresh(handle)
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, -1) }
        let err = rd_kafka_subscribe(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError("cannot subscribe to \(topics.joined(separator: ", ")): \(String(cString: rd_kafka_err2str(err)))")
        }
    }

    /// Ends the handle; one that never got an assignment ends without leaving the group (`close()`).
    deinit { rd_kafka_destroy_flags(handle, group.everAssigned ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE) }

    /// The next record, or nil when none arrived within `timeout` milliseconds.
    public func poll(timeout: Int32) -> ConsumedRecord? {
        guard let message = rd_kafka_consumer_poll(handle, timeout) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            lastError = (String(cString: rd_kafka_err2str(m.err)), Date())
            return nil
        }
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) }
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let topic = String(cString: rd_kafka_topic_name(m.rkt))
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &type)
        let position = TopicPartition(topic: topic, partition: m.partition)
        if let last = group.lastOffsets[position], m.offset <= last {
            // Also a redelivery after a rebalance; a lookup too many costs one round trip.
            group.incarnations.refresh(handle, stale: [topic])
        }
        group.lastOffsets[position] = m.offset
        return ConsumedRecord(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
                              timestamp: type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp,
                              topicID: group.incarnations.id(of: topic, client: handle))
    }

    /// The current id of each subscribed topic's incarnation, as records are stamped with it.
    public var topicIDs: [String: String] { group.incarnations.ids }

    /// Commits the position after `last` offset of each (topic, partition): exactly what a written
    /// batch covers, never a record still in flight. With `wait: false` the commit is sent without
    /// waiting for the broker (a lost one only means redelivery). Safe from any thread.
    public func commit(_ last: [TopicPartition: Int64], wait: Bool = true) throws {
        guard !last.isEmpty else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(last.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (position, offset) in last {
            rd_kafka_topic_partition_list_add(list, position.topic, position.partition).pointee.offset = offset + 1
        }
        let err = rd_kafka_commit(handle, list, wait ? 0 : 1)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET else {
            throw KafkaError("offset commit failed: \(String(cString: rd_kafka_err2str(err)))")
        }
        committed.withLock { committed in
            for (position, offset) in last { committed[position] = max(committed[position] ?? 0, offset + 1) }
        }
    }

    /// Records not yet committed, per assigned partition: the high watermark librdkafka last saw in
    /// a fetch response (no broker round trip) minus the committed position (or the fetch position
    /// before the first commit). Safe from any thread.
    public func lag() -> [TopicPartition: Int64] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [:] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_position(handle, list)
        let committed = committed.withLock { $0 }
        var result: [TopicPartition: Int64] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[i]
            let position = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(handle, element.topic, element.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { continue }
            let done = committed[position] ?? (element.offset >= 0 ? element.offset : low)
            result[position] = max(0, high - done)
        }
        return result
    }

    /// Leaves the group cleanly, once it has taken part in it: a consumer that never got an
    /// assignment (stopped while still joining) only goes away, and the broker lets its session
    /// time out. Tansu 0.6.0 wedges a group whose member leaves in the middle of its first join:
    /// no later member of the group is ever assigned a partition (measured: a processor stopped
    /// 0.1-2.5 s after its start left the next one with nothing for 90 s; killed instead, the next
    /// one consumed 12 s later).
    public func close() {
        if group.everAssigned { rd_kafka_consumer_close(handle) }
    }
}

/// What the rebalance callback and the polling thread share (both run on the polling thread,
/// inside `rd_kafka_consumer_poll` for the callback).
private final class GroupState {
    let incarnations: TopicIncarnations
    /// The offset of the last record handed out per partition, to see a log that went backwards.
    var lastOffsets: [TopicPartition: Int64] = [:]
    /// Whether the group has assigned this member partitions (or none) at least once: its join completed.
    var everAssigned = false

    init(incarnations: TopicIncarnations) { self.incarnations = incarnations }

    /// Takes a new assignment after reading the topic ids again, or gives one up.
    func rebalance(_ client: OpaquePointer, _ err: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let cooperative = rd_kafka_rebalance_protocol(client).map { String(cString: $0) } == "COOPERATIVE"
        if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS { everAssigned = true }
        guard err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, let partitions else {
            if cooperative, let partitions {
                rd_kafka_incremental_unassign(client, partitions).map { rd_kafka_error_destroy($0) }
            } else {
                rd_kafka_assign(client, nil)
            }
            return
        }
        let recreated = incarnations.refresh(client)
        for i in 0..<Int(partitions.pointee.cnt) {
            let element = partitions.pointee.elems[i]
            let topic = String(cString: element.topic)
            guard recreated.contains(topic) else { continue }
            partitions.pointee.elems[i].offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
            lastOffsets[TopicPartition(topic: topic, partition: element.partition)] = nil
        }
        if cooperative {
            rd_kafka_incremental_assign(client, partitions).map { rd_kafka_error_destroy($0) }
        } else {
            rd_kafka_assign(client, partitions)
        }
    }
}
