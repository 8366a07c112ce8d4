import Digest
import Foundation
import JSON
import WorkloadKit

/// A record that will not be stored, on its way to the dead-letter topic.
///
/// The dead letter keeps the original record byte for byte: its value is the record's value (null
/// for a tombstone, empty for an empty value), its key is the record's document id
/// (`topic/topicID/partition/offset`, or `topic/partition/offset` when the topic id is unknown: the
/// same on every redelivery, so a reader or a compacted topic keeps one copy, and different for a
/// record of a topic created again), and headers say why and where it came from:
///
/// | header | value |
/// | --- | --- |
/// | `dlq.reason` | why it was refused (validation, or the database's own answer) |
/// | `dlq.topic`, `dlq.partition`, `dlq.offset` | the record's coordinates |
/// | `dlq.topic_id` | the id of the topic's incarnation (absent when unknown) |
/// | `dlq.key` | the record's key bytes (absent when it had none) |
/// | `dlq.timestamp` | the record's Kafka timestamp, epoch milliseconds |
/// | `dlq.value` | `original`, `tombstone`, or `reference` when the value was too large to copy |
/// | `dlq.size`, `dlq.sha256` | the original value's length and digest (with `reference`) |
///
/// A value larger than `limit` cannot be copied (the broker would refuse the message); the dead
/// letter then carries a JSON reference to the record and its SHA-256 instead.
struct DeadLetter {
    let record: ConsumedRecord
    let reason: String

    /// Key, value and headers of the message to produce, its value at most `limit` bytes.
    func message(limit: Int) -> (key: [UInt8], value: [UInt8]?, headers: [(String, [UInt8])]) {
        var headers: [(String, [UInt8])] = [
            ("dlq.reason", Array(reason.utf8)), ("dlq.topic", Array(record.topic.utf8)),
            ("dlq.partition", Array(String(record.partition).utf8)), ("dlq.offset", Array(String(record.offset).utf8)),
        ]
        if let topicID = record.topicID { headers.append(("dlq.topic_id", Array(topicID.utf8))) }
        if let key = record.key { headers.append(("dlq.key", key)) }
        if let timestamp = record.timestamp { headers.append(("dlq.timestamp", Array(String(timestamp).utf8))) }
        var value = record.value
        switch record.value {
        case nil:
            headers.append(("dlq.value", Array("tombstone".utf8)))
        case let bytes? where bytes.count > limit:
            let digest = SHA256.hex(bytes)
            headers += [("dlq.value", Array("reference".utf8)), ("dlq.size", Array(String(bytes.count).utf8)),
                        ("dlq.sha256", Array(digest.utf8))]
            let reference: JSONValue = [
                "topic": .string(record.topic), "partition": .int(Int(record.partition)), "offset": .int(Int(record.offset)),
                "size": .int(bytes.count), "sha256": .string(digest),
                "note": "the original value is larger than a dead letter may be; read it from its topic at this offset",
            ]
            value = Array(reference.compactData)
        default:
            headers.append(("dlq.value", Array("original".utf8)))
        }
        return (Array(record.documentID.utf8), value, headers)
    }
}
