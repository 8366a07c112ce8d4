/// One step of a `ChangePlan`.
public struct PlannedStep: Sendable, Equatable {
    /// The step (a fan-out child, or a fan-out not expanded yet).
    public var id: StepID
    /// What `up` would do with it.
    public var action: PlannedAction
    /// Why, most telling first.
    public var reasons: [PlanReason]
    /// Whether `up` would change something for it (apply it, or record it anew); false for
    /// `unchanged`, a `check` of an unchanged step and `removed`.
    public var changes: Bool
    /// Among steps that would run, which wave it runs in: 1 for those with no running dependency,
    /// else one more than its latest running dependency (0 for steps that do not run). Steps of one
    /// wave may run in parallel.
    public var wave: Int

    /// Creates a planned step.
    public init(id: StepID, action: PlannedAction, reasons: [PlanReason], changes: Bool, wave: Int = 0) {
        self.id = id
        self.action = action
        self.reasons = reasons
        self.changes = changes
        self.wave = wave
    }
}
