import CRdKafka
import Foundation
import Synchronization

/// Delivery results reported by librdkafka's delivery-report callback.
public final class DeliveryStats: Sendable {
    public let delivered = Atomic<Int>(0)
    public let failed = Atomic<Int>(0)
    public let lastError = Mutex<String?>(nil)
}

/// Owns one librdkafka producer handle: idempotent, batched, keyed messages. Blocking calls; use
/// from one thread.
public final class KafkaProducer: @unchecked Sendable {  // produce from one thread; flush is thread-safe
    private let handle: OpaquePointer
    private var topics: [String: OpaquePointer] = [:]
    public let stats = DeliveryStats()
    /// What an empty (not null) value points at.
    nonisolated(unsafe) private static let emptyValue = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)  // never written

    /// Creates a producer for `brokers` ("host:port,...") with `settings` overriding the defaults.
    public init(brokers: String, settings: [String: String] = [:]) throws {
        let conf = rd_kafka_conf_new()!
        let defaults = [
            "bootstrap.servers": brokers,
            "enable.idempotence": "true",  // implies acks=all and ordered, duplicate-free retries
            "linger.ms": "5",
            "batch.num.messages": "10000",
            "queue.buffering.max.messages": "500000",
            "message.timeout.ms": "30000",
            // A missing topic is an error, never created by a client (Tansu would make 4 partitions);
            // a topic created again is seen within 5 s.
            "allow.auto.create.topics": "false", "topic.metadata.refresh.interval.ms": "5000",
        ]
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in defaults.merging(settings, uniquingKeysWith: { $1 }) {
            guard rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError("Kafka setting \(key)=\(value) rejected: \(String(cString: errstr))")
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(stats).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            let stats = Unmanaged<DeliveryStats>.fromOpaque(opaque).takeUnretainedValue()
            if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                stats.delivered.add(1, ordering: .relaxed)
            } else {
                stats.failed.add(1, ordering: .relaxed)
                let reason = String(cString: rd_kafka_err2str(message.pointee.err))
                stats.lastError.withLock { $0 = reason }
            }
        }
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            throw KafkaError("cannot create the Kafka producer: \(String(cString: errstr))")
        }
        self.handle = handle
    }

    deinit {
        for topic in topics.values { rd_kafka_topic_destroy(topic) }
        rd_kafka_destroy(handle)
    }

    /// Queues one keyed message; when the local queue is full, serves delivery reports until it has room.
    public func produce(topic name: String, key: String, payload: String) throws {
        let topic = try self.topic(name)
        var payload = payload
        var key = key
        while true {
            let rc = payload.withUTF8 { p in
                key.withUTF8 { k in
                    rd_kafka_produce(topic, -1 /* RD_KAFKA_PARTITION_UA */, 0x2 /* RD_KAFKA_MSG_F_COPY */,
                                     UnsafeMutableRawPointer(mutating: p.baseAddress), p.count, k.baseAddress, k.count, nil)
                }
            }
            if rc == 0 { return }
            let error = rd_kafka_last_error()
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                throw KafkaError("cannot queue a message for \(name): \(String(cString: rd_kafka_err2str(error)))")
            }
            rd_kafka_poll(handle, 50)
        }
    }

    /// Queues one message given as bytes: `value` nil is a tombstone; `headers` are added in order.
    /// When the local queue is full, serves delivery reports until it has room. Throws what the
    /// local producer refuses (a message over `message.max.bytes`, say).
    public func produce(topic name: String, key: [UInt8], value: [UInt8]?, headers: [(String, [UInt8])]) throws {
        _ = try topic(name)  // fetch the topic's metadata once, as produce(topic:key:payload:) does
        while true {
            let list = rd_kafka_headers_new(headers.count)
            for (header, bytes) in headers {
                _ = bytes.withUnsafeBytes { rd_kafka_header_add(list, header, -1, $0.baseAddress, $0.count) }
            }
            let error = key.withUnsafeBytes { k in
                if let value {
                    // An empty value still needs a pointer: NULL would make it a tombstone.
                    return value.withUnsafeBytes { v in
                        provision_produce(handle, name, k.baseAddress, k.count, v.baseAddress ?? UnsafeRawPointer(Self.emptyValue), v.count, list)
                    }
                }
                return provision_produce(handle, name, k.baseAddress, k.count, nil, 0, list)
            }
            if error == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            rd_kafka_headers_destroy(list)
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                throw KafkaError("cannot queue a message for \(name): \(String(cString: rd_kafka_err2str(error)))")
            }
            rd_kafka_poll(handle, 50)
        }
    }

    /// Opens the handles of `topics` now, so their metadata is fetched together before the first
    /// message instead of one topic at a time while messages wait.
    public func open(_ topics: [String]) throws {
        for name in topics { _ = try topic(name) }
    }

    /// Serves queued delivery reports without blocking.
    public func poll() { rd_kafka_poll(handle, 0) }

    /// Waits up to `timeout` for every queued message to be delivered (or to fail); returns the number still queued.
    @discardableResult
    public func flush(timeout: Duration) -> Int {
        rd_kafka_flush(handle, Int32(timeout.components.seconds * 1000))
        return Int(rd_kafka_outq_len(handle))
    }

    private func topic(_ name: String) throws -> OpaquePointer {
        if let topic = topics[name] { return topic }
        guard let topic = rd_kafka_topic_new(handle, name, nil) else {
            throw KafkaError("cannot open topic \(name): \(String(cString: rd_kafka_err2str(rd_kafka_last_error())))")
        }
        topics[name] = topic
        return topic
    }
}

/// A producer failure with what to do about it.
public struct KafkaError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
