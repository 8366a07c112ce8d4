import Foundation

/// A value read once and shared by every caller of a run: the first caller's read is the one
/// the others await; a read that failed is no one's answer (the next caller reads again).
package actor SharedRead<Value: Sendable> {
    private var read: Task<Value, any Error>?

    /// The value, from the read in flight or done, or from `make` when there is none.
    func value(_ make: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task: Task<Value, any Error>
        if let read {
            task = read
        } else {
            task = Task { try await make() }
            read = task
        }
        do {
            return try await task.value
        } catch {
            if read == task { read = nil }
            throw error
        }
    }
}
