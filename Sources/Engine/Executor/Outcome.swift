/// How one step ended in a walk.
public enum Outcome: Sendable, Equatable {
    /// `apply` ran and succeeded.
    case applied(StepOutputs)
    /// `check` found the world already right; nothing was applied.
    case adopted(StepOutputs)
    /// Succeeded before with the same fingerprint; not visited.
    case unchanged(StepOutputs)
    /// Every allowed attempt failed.
    case failed(String)
    /// Not run because of an upstream failure.
    case skipped(String)
    /// Interrupted by cancellation.
    case cancelled
    /// `down --keep-infra` left this infrastructure step standing (not torn down, not destroyed).
    case kept

    /// Whether steps downstream may run.
    public var isSuccess: Bool {
        switch self {
        case .applied, .adopted, .unchanged, .kept: true
        default: false
        }
    }

    /// The outputs of a successful outcome.
    public var outputs: StepOutputs {
        switch self {
        case .applied(let o), .adopted(let o), .unchanged(let o): o
        default: [:]
        }
    }
}

/// What a walk did, step by step.
public struct RunSummary: Sendable {
    /// Outcome of every step visited (fan-out children included, fan-out templates not).
    public var outcomes: [StepID: Outcome] = [:]
    /// Whether cancellation stopped the walk.
    public var cancelled = false

    /// Steps with the given kind of outcome.
    public func count(_ predicate: (Outcome) -> Bool) -> Int { outcomes.values.filter(predicate).count }

    /// Failed steps and their errors, in id order.
    public var failures: [(StepID, String)] {
        outcomes.compactMap { id, outcome in
            if case .failed(let message) = outcome { return (id, message) }
            return nil
        }.sorted { $0.0 < $1.0 }
    }

    /// The run's final status.
    public var status: RunStatus {
        if cancelled { return .cancelled }
        return outcomes.values.allSatisfy(\.isSuccess) ? .succeeded : .failed
    }
}
