/// A step's stable identifier, such as `k3s.join/worker-2`: the part before `/` names the step kind
/// or template, the part after it the item a fan-out expanded it for.
public struct StepID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The identifier as written.
    public let rawValue: String

    /// Creates an identifier from its text.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Creates an identifier from a string literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The identifier of the child a fan-out creates for `item`.
    public func child(_ item: String) -> StepID { StepID("\(rawValue)/\(item)") }

    public var description: String { rawValue }

    public static func < (lhs: StepID, rhs: StepID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
