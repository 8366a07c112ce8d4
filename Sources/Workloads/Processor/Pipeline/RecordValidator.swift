import CMongoc
import Foundation
import WorkloadKit

/// Decides whether a record is a well-formed event of its topic, parsing it once into the BSON
/// document that will be written; the reason of a rejection goes to the dead-letter topic.
///
/// What is checked is what the database will store: the bytes must be strict JSON (`StrictJSON`:
/// no duplicate keys, no NaN/Infinity, integers within 64 bits, valid UTF-8, bounded nesting),
/// an object, with the topic's fields of the right types and a `timestamp` in an accepted form
/// (`EventTime`), which is stored normalised as the date `event_time`.
struct RecordValidator {
    let metricsTopic: String
    let tokensTopic: String

    static let gpuNumbers = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
                             "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_XID_ERRORS"]
    static let tokenNumbers = ["prompt_tokens", "completion_tokens", "total_tokens", "latency_ms"]

    /// A record that passed: its document (not yet carrying the Kafka fields), its event time and
    /// its producer's identity for it.
    struct Event {
        let document: BSONDocument
        let milliseconds: Int64
        /// `producer_run/event_seq` when the event carries both in the form the producers write
        /// them (a run id of at most 100 letters, digits, `.`, `_` or `-`; a sequence number that
        /// is a non-negative integer): the same event written twice by the broker (a retry of a
        /// non-idempotent producer) has one identity. Nil for events without it.
        let identity: String?
    }

    /// The parsed event, or why it is rejected.
    func validate(_ record: ConsumedRecord) -> Result<Event, Rejection> {
        guard let value = record.value else { return .failure(Rejection("tombstone: the record has no value")) }
        guard !value.isEmpty else { return .failure(Rejection("empty value")) }
        if let problem = StrictJSON.problem(in: value) { return .failure(Rejection(problem)) }
        guard value.first(where: { ![9, 10, 13, 32].contains($0) }) == UInt8(ascii: "{") else {
            return .failure(Rejection("not a JSON object"))
        }
        guard let document = BSONDocument(json: value) else { return .failure(Rejection("not valid JSON (refused by the BSON parser)")) }
        let (strings, numbers) = record.topic == metricsTopic ? (["gpu_uuid", "node"], Self.gpuNumbers) : (["request_id", "model"], Self.tokenNumbers)
        for field in strings {
            guard let type = document.type(of: field) else { return .failure(Rejection("missing field '\(field)'")) }
            guard type == BSON_TYPE_UTF8 else { return .failure(Rejection("field '\(field)' must be a string")) }
        }
        for field in numbers {
            guard document.type(of: field) != nil else { return .failure(Rejection("missing field '\(field)'")) }
            guard document.number(field) != nil else { return .failure(Rejection("field '\(field)' must be a number")) }
        }
        let time: Result<Int64, EventTimeError>
        switch document.type(of: "timestamp") {
        case nil:
            return .failure(Rejection("missing field 'timestamp'"))
        case BSON_TYPE_UTF8?:
            time = EventTime.milliseconds(rfc3339: document.string("timestamp") ?? "")
        default:
            guard let number = document.number("timestamp") else {
                return .failure(Rejection("field 'timestamp' must be epoch seconds, epoch milliseconds or an RFC 3339 string"))
            }
            time = EventTime.milliseconds(number: number)
        }
        switch time {
        case .success(let milliseconds): return .success(Event(document: document, milliseconds: milliseconds, identity: Self.identity(of: document)))
        case .failure(let error): return .failure(Rejection(error.reason))
        }
    }

    /// The event's `producer_run/event_seq`, or nil when it lacks either or they are not in the
    /// producers' form (such an event is identified by its Kafka coordinates instead).
    static func identity(of document: BSONDocument) -> String? {
        guard document.type(of: "producer_run") == BSON_TYPE_UTF8, let run = document.string("producer_run"),
              (1...100).contains(run.utf8.count),
              run.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || [45, 46, 95].contains($0) }),
              let sequence = document.integer("event_seq"), sequence >= 0 else { return nil }
        return "\(run)/\(sequence)"
    }

    struct Rejection: Error { let reason: String; init(_ reason: String) { self.reason = reason } }
}
