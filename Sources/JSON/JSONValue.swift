import Foundation

/// A JSON document as a value: Terraform's variables, outputs and state, Kubernetes objects, the
/// CLI's `--json` answers, and the workloads' own JSON (MongoDB replies, HTTP answers).
public enum JSONValue: Sendable, Hashable, Codable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON text; nil when it is not JSON.
    public static func parse(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let v = try? container.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? container.decode(Double.self) {
            self = .number(v)
        } else if let v = try? container.decode(String.self) {
            self = .string(v)
        } else if let v = try? container.decode([JSONValue].self) {
            self = .array(v)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let v): try container.encode(v)
        case .number(let v): if let i = Self.integer(v) { try container.encode(i) } else { try container.encode(v) }
        case .bool(let v): try container.encode(v)
        case .null: try container.encodeNil()
        case .array(let v): try container.encode(v)
        case .object(let v): try container.encode(v)
        }
    }

    /// The member `key` of an object; nil for anything else or a missing member.
    /// Setting it on anything but an object does nothing.
    public subscript(key: String) -> JSONValue? {
        get { if case .object(let members) = self { members[key] } else { nil } }
        set {
            guard case .object(var members) = self else { return }
            members[key] = newValue
            self = .object(members)
        }
    }

    /// Edits the value at `path` (member names), making every missing or non-object step on the
    /// way an object; the value is `{}` when missing.
    public mutating func edit(_ path: String..., with body: (inout JSONValue) -> Void) {
        edit(path[...], with: body)
    }

    private mutating func edit(_ path: ArraySlice<String>, with body: (inout JSONValue) -> Void) {
        guard let key = path.first else { return body(&self) }
        var members: [String: JSONValue] = if case .object(let existing) = self { existing } else { [:] }
        var child = members[key] ?? .object([:])
        child.edit(path.dropFirst(), with: body)
        members[key] = child
        self = .object(members)
    }

    /// Each element transformed, when this is an array; an empty array otherwise.
    public func mapElements(_ transform: (JSONValue) -> JSONValue) -> JSONValue {
        .array((array ?? []).map(transform))
    }

    /// The string, when this is one.
    public var string: String? {
        if case .string(let v) = self { v } else { nil }
    }

    /// The number when this is a whole one (as JSON writes counts).
    public var int: Int? {
        if case .number(let v) = self { Self.integer(v) } else { nil }
    }

    /// The elements, when this is an array.
    public var array: [JSONValue]? {
        if case .array(let v) = self { v } else { nil }
    }

    /// Compact, key-sorted JSON (what is sent to the Kubernetes API).
    public var compactData: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// `v` as an Int when it is a whole number that a Double holds exactly.
    private static func integer(_ v: Double) -> Int? { v == v.rounded() && abs(v) < 1e15 ? Int(v) : nil }

    /// Pretty, key-sorted JSON text.
    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self) + "\n"
    }
}

/// JSON written in Swift: `["kind": "error", "steps": .int(3)]`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(Dictionary(elements, uniquingKeysWith: { $1 })) }
    public init(nilLiteral: ()) { self = .null }

    /// A whole number.
    public static func int(_ value: Int) -> JSONValue { .number(Double(value)) }

    /// `value`, or null.
    public static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// Each string.
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
}
