/// What a step's read-only `check` found.
public enum CheckResult: Sendable, Equatable {
    /// The world is already as the step wants it; these are the outputs `apply` would have produced.
    case satisfied(StepOutputs)
    /// The step must be applied; the reason is shown in events.
    case unsatisfied(String)
}
