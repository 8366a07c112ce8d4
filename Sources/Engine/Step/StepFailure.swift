/// An error a step throws to say whether trying again can help.
public struct StepFailure: Error, CustomStringConvertible, Sendable {
    /// What went wrong and what to do about it.
    public var message: String
    /// False when another attempt cannot succeed (a missing binary, a rejected credential).
    public var retryable: Bool

    /// Creates a failure.
    public init(_ message: String, retryable: Bool = true) {
        self.message = message
        self.retryable = retryable
    }

    public var description: String { message }
}

/// Thrown when an attempt ran past its policy's timeout.
public struct StepTimedOut: Error, CustomStringConvertible, Sendable {
    /// The limit that was exceeded.
    public let limit: Duration
    public var description: String { "attempt timed out after \(limit.formatted)" }
}

extension Duration {
    /// A short human form: `850ms`, `12.3s`, `4m05s`.
    public var formatted: String {
        let s = seconds
        if s < 1 { return "\(Int(s * 1000))ms" }
        if s < 60 { return String(format: "%.1fs", s) }
        let total = Int(s.rounded())
        return String(format: "%dm%02ds", total / 60, total % 60)
    }
}
