/// Why a step gets its `PlannedAction`. Text values are redacted.
public enum PlanReason: Sendable, Equatable {
    /// Never recorded: new to the store.
    case new
    /// Recorded in a state that is not `succeeded` (failed, cancelled, interrupted, destroyed, ...).
    case lastState(StepState)
    /// An input of its fingerprint differs from the one it last succeeded with.
    case input(InputChange)
    /// Its fingerprint changed, and its record predates the store keeping inputs by key.
    case inputsNotRecorded
    /// These dependencies would run first, and the step takes all of their outputs.
    case dependencyRuns([StepID])
    /// These dependencies would run first; only its share of their outputs counts, so it runs
    /// only if that share changes, which is known after they ran.
    case dependencyRunsOutputsDecide([StepID])
    /// A fan-out whose items come from `source`, which has not run: its children are known after it.
    case expandsAfter(StepID)
    /// A fan-out child whose fan-out takes its items from `source`, which would run first: the
    /// children listed are the recorded ones, and some may be added or removed.
    case itemsMayChange(StepID)
    /// `--refresh`: its live check failed.
    case checkFailed(String)
    /// `--refresh`: its live check passed with the recorded outputs.
    case checkPassed
    /// `--refresh`: its live check passed with other outputs than recorded: `up` records them
    /// (adopts), and what depends on them sees the change.
    case checkPassedWithNewOutputs
    /// Without `--refresh`: succeeded and unchanged, but `up` runs its check first every time.
    case checkedEveryRun
    /// It has no check, so nothing can adopt it.
    case noCheck
}
