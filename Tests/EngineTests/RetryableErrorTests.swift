import Foundation
import Testing
@testable import Engine

/// Whether to try again is the error's to say, and the error survives being reported.
@Suite struct RetryableErrorTests {
    struct RefusedKey: RetryableError, CustomStringConvertible, Sendable {
        var isRetryable: Bool { false }
        var description: String { "the node refused the key" }
    }

    struct Refuses: Step {
        let id: StepID = "refuses"
        var inputs: String { "" }
        var retry: RetryPolicy { RetryPolicy(attempts: 5, backoff: .milliseconds(1)) }
        func apply(_ context: StepContext) async throws -> StepOutputs { throw RefusedKey() }
    }

    @Test func anyRetryableErrorThatSaysNoStopsRetriesAndAttemptsCanBeReadBack() async throws {
        let harness = try Harness()
        let summary = try await harness.run([.step(Refuses())])
        #expect(summary.failures.map(\.1) == ["the node refused the key"])
        let attempts = try harness.store.attempts(of: "refuses", run: nil)
        #expect(attempts.map(\.attempt) == [1] && attempts.first?.outcome == "failed" && attempts.first?.error == "the node refused the key")
    }

    @Test func stepFailureWrappingAnErrorKeepsItAndItsRetryability() {
        let failure = StepFailure(wrapping: RefusedKey())
        #expect(failure.message == "the node refused the key" && !failure.isRetryable)
        #expect(failure.underlying is RefusedKey)
        #expect(StepFailure(wrapping: CancellationError()).isRetryable)
    }
}
