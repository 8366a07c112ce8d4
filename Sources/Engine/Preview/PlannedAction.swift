/// What `up` would do with a step, as `provision plan` reports it.
public enum PlannedAction: String, Sendable, Codable, CaseIterable {
    /// Applied.
    case run
    /// Left alone.
    case unchanged
    /// Its read-only check runs first; applied only if the check fails (without `--refresh` the
    /// plan does not know the answer).
    case check
    /// Recorded in the store but no longer in the plan: `up` leaves it (no teardown runs) and
    /// `down` no longer visits it.
    case removed
}
