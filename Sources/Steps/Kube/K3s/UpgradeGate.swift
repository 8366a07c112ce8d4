import Engine
import Foundation

/// The rolling upgrade's one rule, for every `k3s.join` of a run: at most `limit`
/// (`k3s.max_unavailable`) workers out of service at once.
///
/// A worker is out of service from its cordon to its uncordon. One that an interrupted run left
/// cordoned (`NodeUpgrade`'s marker on the control plane, read once per run) already counts: its
/// own step is let through at once and finishes it, and the others wait for it, so a `resume`
/// continues with the node the killed run was upgrading before it takes out another. Of the
/// workers waiting, the first by name goes next (the order `plan` shows).
package actor UpgradeGate {
    /// How many workers may be out of service at once.
    let limit: Int

    private var held: Set<String> = []
    private var waiting: Set<String> = []
    /// Workers an interrupted run left cordoned; nil until read.
    private var leftOut: Set<String>?
    private var leftOutRead: ContinuousClock.Instant?
    /// How long a node left cordoned keeps counting without its step asking for it.
    let leftOutPatience: Duration

    init(limit: Int, leftOutPatience: Duration = .seconds(120)) {
        self.limit = max(1, limit)
        self.leftOutPatience = leftOutPatience
    }

    /// Workers out of service now, by this run or left by an interrupted one.
    var outOfService: Set<String> { held.union(leftOut ?? []) }

    /// Waits until `node` may be taken out of service, then counts it as out.
    /// - Parameter leftCordoned: reads the workers an interrupted run left cordoned (asked once per run).
    func acquire(_ node: String, leftCordoned: @Sendable () async throws -> Set<String>) async throws {
        if leftOut == nil {
            let read = try await leftCordoned()
            if leftOut == nil { (leftOut, leftOutRead) = (read, .now) }
        }
        waiting.insert(node)
        defer { waiting.remove(node) }
        while !(held.contains(node) || leftOut?.contains(node) == true || (outOfService.count < limit && node == first(of: waiting))) {
            // A node left cordoned whose own step has not come for it (not in this run, or it
            // failed before it asked) stops counting after `leftOutPatience`: no one waits for ever.
            if let read = leftOutRead, ContinuousClock.now - read > leftOutPatience, let absent = leftOut?.subtracting(held), !absent.isEmpty {
                leftOut?.subtract(absent)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        held.insert(node)
    }

    /// The name that goes first among `names` (worker-2 before worker-10).
    private func first(of names: Set<String>) -> String? {
        names.min { $0.compare($1, options: .numeric) == .orderedAscending }
    }

    /// `node` is back in service (or its step gave up on it): the next may go.
    func release(_ node: String) {
        held.remove(node)
        leftOut?.remove(node)
    }
}
