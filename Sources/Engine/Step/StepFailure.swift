/// An error a step throws to say whether trying again can help, keeping the error it came from.
public struct StepFailure: RetryableError, CustomStringConvertible, Sendable {
    /// What went wrong and what to do about it.
    public var message: String
    /// False when another attempt cannot succeed (a missing binary, a rejected credential).
    public var retryable: Bool
    /// The error this failure reports, when it wraps one (an `SSHError`, say), for callers that
    /// need more than the text.
    public var underlying: (any Error & Sendable)?

    /// Creates a failure.
    public init(_ message: String, retryable: Bool = true, underlying: (any Error & Sendable)? = nil) {
        self.message = message
        self.retryable = retryable
        self.underlying = underlying
    }

    /// A failure reporting `error`: its description, and whether it is retryable when it says so.
    public init(wrapping error: any Error & Sendable, retryable: Bool? = nil) {
        self.init(String(describing: error), retryable: retryable ?? (error as? any RetryableError)?.isRetryable ?? true, underlying: error)
    }

    public var isRetryable: Bool { retryable }
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
