import Engine
import Foundation

/// The nodes a `k3s.version` change upgrades, in the order `up` handles them, read from a
/// `ChangePlan`: the steps that install K3s on a node that would run because the version changed.
/// The rolling upgrade's order: the server alone first (the joins depend on it), then the workers
/// `k3s.max_unavailable` at a time (`UpgradeGate`), in name order as their steps reach the gate.
public struct K3sNodeOrder: Sendable, Equatable {
    /// The version the store recorded and the plan's.
    public let old: String?
    public let new: String?
    /// Step ids by wave, first wave first.
    public let waves: [[StepID]]

    /// The order for `plan`, or nil when no node's K3s would be reinstalled for a version change.
    public init?(_ plan: ChangePlan, maxUnavailable: Int = 1) {
        var change: (String?, String?)?
        var server: [StepID] = []
        var workers: [StepID] = []
        for step in plan.steps where step.action == .run && Self.installsK3s(step.id) {
            for case .input(.planKey("k3s.version", let old, let new)) in step.reasons {
                change = (old, new)
                if step.id == K3sServerStep.id { server.append(step.id) } else { workers.append(step.id) }
            }
        }
        guard let change else { return nil }
        (old, new) = change
        workers.sort { $0.rawValue.compare($1.rawValue, options: .numeric) == .orderedAscending }
        let size = max(1, maxUnavailable)
        waves = (server.isEmpty ? [] : [server]) + stride(from: 0, to: workers.count, by: size).map { Array(workers[$0..<min($0 + size, workers.count)]) }
    }

    /// Whether `id` installs K3s on one node.
    static func installsK3s(_ id: StepID) -> Bool {
        id == K3sServerStep.id || id.rawValue.hasPrefix(K3sJoinStep.id.rawValue + "/")
    }
}
