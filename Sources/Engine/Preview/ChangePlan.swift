/// What `up` would do now, step by step, and why: the answer of `provision plan`, computed by
/// `Executor.plan` without taking the lock and without changing anything.
public struct ChangePlan: Sendable, Equatable {
    /// Every step in graph order (fan-outs expanded as `up` would expand them), then the recorded
    /// steps the plan no longer has.
    public var steps: [PlannedStep]
    /// Whether live checks ran (`--refresh`).
    public var refreshed: Bool

    /// Creates a plan.
    public init(steps: [PlannedStep], refreshed: Bool) {
        self.steps = steps
        self.refreshed = refreshed
    }

    /// Whether `up` would change anything (the exit code 2 of `plan --detailed-exitcode`).
    public var hasChanges: Bool { steps.contains(where: \.changes) }

    /// The planned step with `id`.
    public subscript(id: StepID) -> PlannedStep? { steps.first { $0.id == id } }

    /// The ids of the steps with `action`, in order.
    public func ids(_ action: PlannedAction) -> [StepID] { steps.filter { $0.action == action }.map(\.id) }
}
