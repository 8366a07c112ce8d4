import Engine
import JSON

extension JSONValue {
    /// The value as a step output (null becomes an empty string).
    public var outputValue: OutputValue {
        switch self {
        case .string(let v): return .string(v)
        case .number(let v): return int.map(OutputValue.int) ?? .string(String(v))
        case .bool(let v): return .bool(v)
        case .null: return .string("")
        case .array(let v): return .list(v.map(\.outputValue))
        case .object(let v): return .map(v.mapValues(\.outputValue))
        }
    }
}
