/// A typed value a step produces for the steps downstream of it; persisted with the step as JSON.
public enum OutputValue: Sendable, Hashable, Codable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([OutputValue])
    case map([String: OutputValue])

    /// The value's items as strings when it is a list of scalars, for fan-out.
    public var items: [String]? {
        guard case .list(let values) = self else { return nil }
        return values.compactMap(\.scalarText)
    }

    /// The value as text when it is a scalar.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return String(b)
        case .list, .map: return nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int.self) {
            self = .int(i)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let l = try? container.decode([OutputValue].self) {
            self = .list(l)
        } else {
            self = .map(try container.decode([String: OutputValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let s): try container.encode(s)
        case .int(let i): try container.encode(i)
        case .bool(let b): try container.encode(b)
        case .list(let l): try container.encode(l)
        case .map(let m): try container.encode(m)
        }
    }

    /// A deterministic text form (map keys sorted), for fingerprints: a dictionary's own
    /// description changes order from one process to the next.
    public var canonical: String {
        switch self {
        case .string(let s): return "s:\(s.count):\(s)"
        case .int(let i): return "i:\(i)"
        case .bool(let b): return "b:\(b)"
        case .list(let l): return "[" + l.map(\.canonical).joined(separator: ",") + "]"
        case .map(let m): return "{" + m.sorted { $0.key < $1.key }.map { "\($0.key.count):\($0.key)=\($0.value.canonical)" }.joined(separator: ",") + "}"
        }
    }

    /// The same value with `transform` applied to every string in it.
    public func mapStrings(_ transform: (String) -> String) -> OutputValue {
        switch self {
        case .string(let s): return .string(transform(s))
        case .int, .bool: return self
        case .list(let l): return .list(l.map { $0.mapStrings(transform) })
        case .map(let m): return .map(m.mapValues { $0.mapStrings(transform) })
        }
    }
}

/// The named outputs of one step.
public typealias StepOutputs = [String: OutputValue]
