import Foundation

extension Executor {
    /// A step's attempts under its retry policy, shared by apply and teardown. Each attempt gets a
    /// context, a log header and the policy's timeout. A failure is recorded (redacted) and retried
    /// with backoff until the policy runs out or the error is not retryable. Cancellation, during an
    /// attempt or a backoff, ends the loop at once. Run-store failures are rethrown.
    /// - Parameters:
    ///   - first: the number of the first attempt (a resumed run keeps counting).
    ///   - label: prefixes log headers and recorded errors ("" for apply, "teardown: ").
    ///   - begin: called before each attempt (apply commits its intent here).
    ///   - succeeded: records a successful attempt and returns the outcome.
    ///   - cancelled: records cancellation and returns the outcome.
    func attempts(
        _ step: any Step, first: Int, item: String?, upstream: [StepID: StepOutputs], label: String,
        begin: (Int) throws -> Void = { _ in },
        work: @escaping @Sendable (StepContext) async throws -> StepOutputs,
        succeeded: (Int, StepOutputs, Duration) throws -> Outcome,
        cancelled: (Int) throws -> Outcome
    ) async throws -> Outcome {
        let policy = step.retry
        let last = first + policy.attempts - 1
        for attempt in first...last {
            try begin(attempt)
            let context = context(for: step.id, attempt: attempt, item: item, upstream: upstream)
            context.log.write("=== \(label)\(step.id) attempt \(attempt) (run \(run.id)) \(ISO8601DateFormatter().string(from: Date())) ===")
            let started = ContinuousClock.now
            do {
                let outputs = try await withTimeout(policy.timeout) { try await work(context) }
                return try succeeded(attempt, outputs, ContinuousClock.now - started)
            } catch let error as StoreError {
                throw error
            } catch where Task.isCancelled {
                return try cancelled(attempt)
            } catch {
                let message = redactor.redact(label + String(describing: error))
                let final = (error as? any RetryableError)?.isRetryable == false || attempt == last
                let duration = ContinuousClock.now - started
                notify(try store.markAttemptFailed(step.id, run: run.id, attempt: attempt, error: message, duration: duration, final: final))
                context.log.write("attempt \(attempt) failed after \(duration.formatted): \(message)")
                if final { return .failed(message) }
                do {
                    try await Task.sleep(for: policy.delay(after: attempt - first + 1))
                } catch {
                    return try cancelled(attempt)
                }
            }
        }
        return .failed("no attempt was made")
    }
}
