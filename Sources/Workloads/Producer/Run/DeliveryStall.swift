import Foundation

/// Tells a producer whose deliveries stopped for good from one riding out an outage: stalled when
/// messages failed and none was acknowledged for `limit` (longer than a message's own timeout, so
/// a broker that comes back in time never counts).
struct DeliveryStall {
    let limit: Duration
    private var acknowledged = 0
    private var failed = 0
    private var since = ContinuousClock.now

    init(limit: Duration) { self.limit = limit }

    /// Records the counts now; true once failures came without an acknowledgement for `limit`.
    mutating func stalled(acknowledged: Int, failed: Int, now: ContinuousClock.Instant = .now) -> Bool {
        if acknowledged != self.acknowledged || failed == self.failed && failed == 0 {
            self.acknowledged = acknowledged
            self.failed = failed
            since = now
            return false
        }
        return failed > self.failed && now - since > limit
    }
}
