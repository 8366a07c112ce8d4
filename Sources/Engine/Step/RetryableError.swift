/// An error that knows whether another attempt can help. The executor stops retrying a step at
/// the first error that says it cannot; any other error is retried while the policy allows.
public protocol RetryableError: Error {
    /// False when another attempt cannot succeed (a missing binary, a rejected key).
    var isRetryable: Bool { get }
}
