/// What `up` does with a step before anything of it runs: the one decision `Executor.up` and
/// `provision plan` (`Executor.plan`) share, so a plan cannot promise what `up` does not do.
public enum StepDecision: Sendable, Equatable {
    /// Succeeded before with the same fingerprint and no dependency applied: left alone.
    case unchanged
    /// Succeeded and unchanged, but its check runs against the live world first (`up --recheck`, or
    /// a step that `checksEveryRun`): applied again only if the check fails.
    case recheck
    /// New, failed, cancelled or interrupted: its check decides between adopting and applying.
    case checkFirst
    /// Applied without asking its check.
    case apply(ApplyCause)

    /// Why a step is applied without a check.
    public enum ApplyCause: Sendable, Equatable {
        /// It succeeded before, with another fingerprint.
        case inputsChanged
        /// A dependency was applied in this run (its check could pass on what an earlier attempt did
        /// before the dependency changed the world).
        case dependencyApplied
    }
}

extension Executor {
    /// Decides what `up` does with `step`.
    /// - Parameters:
    ///   - record: what the store holds for it.
    ///   - fingerprint: its fingerprint now (`fingerprint(_:upstream:)` of its scope of the upstream).
    ///   - scoped: whether the step declares an `upstreamScope` (then only its share of the outputs counts).
    ///   - appliedInWalk: a dependency was applied in this walk.
    ///   - appliedEarlierInRun: a dependency was applied earlier in this run (before a kill and `resume`).
    ///   - run: the run deciding (nil: a run not started yet, as `provision plan` previews).
    ///   - recheck: `up --recheck` (or `plan --refresh`).
    public static func decide(
        _ step: any Step, record: StepRecord?, fingerprint: String, scoped: Bool, appliedInWalk: Bool, appliedEarlierInRun: Bool,
        run: Int64?, recheck: Bool
    ) -> StepDecision {
        let dependencyAppliedInRun = appliedInWalk || appliedEarlierInRun
        if let record, record.state == .succeeded {
            // Applied earlier in this run, before this step last succeeded in another run: as if
            // the walk had applied it now.
            let dependencyApplied = appliedInWalk || (record.run != run && dependencyAppliedInRun)
            if record.fingerprint == fingerprint && (scoped || !dependencyApplied) {
                return (recheck || step.checksEveryRun) && step.hasCheck ? .recheck : .unchanged
            }
            return .apply(record.fingerprint == fingerprint ? .dependencyApplied : .inputsChanged)
        }
        if dependencyAppliedInRun && (!scoped || record?.fingerprint != fingerprint) { return .apply(.dependencyApplied) }
        return .checkFirst
    }
}
