import Foundation
import WorkloadKit

/// Decides whether a record is a well-formed event of its topic; the reason goes to the dead-letter topic.
struct RecordValidator {
    let metricsTopic: String
    let tokensTopic: String

    static let gpuNumbers = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
                             "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_XID_ERRORS"]
    static let tokenNumbers = ["prompt_tokens", "completion_tokens", "total_tokens", "latency_ms"]

    /// The parsed event, or why it is rejected.
    func validate(_ record: ConsumedRecord) -> Result<[String: Any], Rejection> {
        guard let object = try? JSONSerialization.jsonObject(with: Data(record.payload)) else { return .failure(Rejection("not valid JSON")) }
        guard let event = object as? [String: Any] else { return .failure(Rejection("not a JSON object")) }
        let (strings, numbers) = record.topic == metricsTopic ? (["gpu_uuid", "node"], Self.gpuNumbers) : (["request_id", "model"], Self.tokenNumbers)
        for field in strings {
            guard let value = event[field] else { return .failure(Rejection("missing field '\(field)'")) }
            guard value is String else { return .failure(Rejection("field '\(field)' must be a string")) }
        }
        for field in numbers {
            guard let value = event[field] else { return .failure(Rejection("missing field '\(field)'")) }
            guard value is NSNumber, !(value is String) else {
                return .failure(Rejection("field '\(field)' must be a number"))
            }
        }
        return .success(event)
    }

    struct Rejection: Error { let reason: String; init(_ reason: String) { self.reason = reason } }
}
