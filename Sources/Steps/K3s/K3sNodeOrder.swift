import Engine

/// The nodes a `k3s.version` change reinstalls, in the order `up` handles them, read from a
/// `ChangePlan`: the steps that install K3s on a node (`k3s.server`, then each `k3s.join/<worker>`)
/// that would run because the version changed, grouped by the wave the graph puts them in. Steps of
/// one wave run in parallel (up to the plan's parallelism); this is the graph's order, not a
/// rolling upgrade.
public struct K3sNodeOrder: Sendable, Equatable {
    /// The version the store recorded and the plan's.
    public let old: String?
    public let new: String?
    /// Step ids by wave, first wave first.
    public let waves: [[StepID]]

    /// The order for `plan`, or nil when no node's K3s would be reinstalled for a version change.
    public init?(_ plan: ChangePlan) {
        var change: (String?, String?)?
        var byWave: [Int: [StepID]] = [:]
        for step in plan.steps where step.action == .run && Self.installsK3s(step.id) {
            for case .input(.planKey("k3s.version", let old, let new)) in step.reasons {
                change = (old, new)
                byWave[step.wave, default: []].append(step.id)
            }
        }
        guard let change else { return nil }
        (old, new) = change
        waves = byWave.keys.sorted().map { byWave[$0]! }
    }

    /// Whether `id` installs K3s on one node.
    static func installsK3s(_ id: StepID) -> Bool {
        id == K3sServerStep.id || id.rawValue.hasPrefix(K3sJoinStep.id.rawValue + "/")
    }
}
