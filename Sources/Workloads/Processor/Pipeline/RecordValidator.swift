import CMongoc
import Foundation
import WorkloadKit

/// Decides whether a record is a well-formed event of its topic, parsing it once into the BSON
/// document that will be written; the reason of a rejection goes to the dead-letter topic.
struct RecordValidator {
    let metricsTopic: String
    let tokensTopic: String

    static let gpuNumbers = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
                             "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_XID_ERRORS"]
    static let tokenNumbers = ["prompt_tokens", "completion_tokens", "total_tokens", "latency_ms"]

    /// The parsed event, or why it is rejected.
    func validate(_ record: ConsumedRecord) -> Result<BSONDocument, Rejection> {
        guard let first = record.payload.first(where: { ![9, 10, 13, 32].contains($0) }) else { return .failure(Rejection("not valid JSON")) }
        guard first == UInt8(ascii: "{") else {
            return .failure(Rejection(BSONDocument(json: record.payload) == nil && first != UInt8(ascii: "[") ? "not valid JSON" : "not a JSON object"))
        }
        guard let document = BSONDocument(json: record.payload) else { return .failure(Rejection("not valid JSON")) }
        let (strings, numbers) = record.topic == metricsTopic ? (["gpu_uuid", "node"], Self.gpuNumbers) : (["request_id", "model"], Self.tokenNumbers)
        for field in strings {
            guard let type = document.type(of: field) else { return .failure(Rejection("missing field '\(field)'")) }
            guard type == BSON_TYPE_UTF8 else { return .failure(Rejection("field '\(field)' must be a string")) }
        }
        for field in numbers {
            guard document.type(of: field) != nil else { return .failure(Rejection("missing field '\(field)'")) }
            guard document.number(field) != nil else { return .failure(Rejection("field '\(field)' must be a number")) }
        }
        return .success(document)
    }

    struct Rejection: Error { let reason: String; init(_ reason: String) { self.reason = reason } }
}
