import Foundation

/// Durable record of runs, steps, attempts, events, fan-out expansions and the writer lock, plus
/// what steps keep (`StepStore`). Every method is atomic; the executor relies on "intent before effect":
/// `markRunning` is committed before a step's `apply` starts, and `markSucceeded` records outputs
/// and the new state in one transaction after it returns.
public protocol RunStore: StepStore {
    /// Takes the one-writer lock or throws `LockError` naming the holder.
    func acquireLock(_ holder: LockHolder) throws
    /// Releases the lock if `pid` holds it.
    func releaseLock(pid: Int32) throws
    /// The current holder, if any.
    func lockHolder() throws -> LockHolder?
    /// Removes the lock whoever holds it, recording who it was.
    func clearLock() throws

    /// Starts a new run.
    func beginRun(command: RunCommand, planPath: String, planText: String) throws -> RunRecord
    /// Marks an unfinished run as running again (for `resume`).
    func resumeRun(_ id: Int64) throws
    /// Records how a run ended.
    func finishRun(_ id: Int64, status: RunStatus) throws
    /// The newest run, if any.
    func lastRun() throws -> RunRecord?

    /// Every step ever recorded, by id.
    func steps() throws -> [StepID: StepRecord]
    // Every method that records a state change also records its event in the same transaction and
    // returns that event exactly as stored (with its `seq`), so what the executor shows and what
    // the store keeps are the same event.

    /// Intent: attempt `attempt` of `step` starts now in `run`.
    @discardableResult
    func markRunning(_ step: StepID, run: Int64, attempt: Int, fingerprint: String) throws -> Event
    /// Effect recorded: outputs, `succeeded` and the inputs it succeeded with together; the event
    /// is `step.adopted` or `step.succeeded` with `attempt` and `message`.
    @discardableResult
    func markSucceeded(_ step: StepID, run: Int64, fingerprint: String, inputs: RecordedInputs?, outputs: StepOutputs, duration: Duration,
                       adopted: Bool, attempt: Int?, message: String) throws -> Event
    /// Fills in the inputs by key of a step recorded before the store kept them (its record has
    /// none); no event, since nothing happened to the step.
    func backfillInputs(_ step: StepID, inputs: RecordedInputs) throws
    /// Records a failed attempt; `final` also moves the step to `failed`.
    @discardableResult
    func markAttemptFailed(_ step: StepID, run: Int64, attempt: Int, error: String, duration: Duration, final: Bool) throws -> Event
    /// The attempts of `step` (every run when `run` is nil), oldest first.
    func attempts(of step: StepID, run: Int64?) throws -> [AttemptRecord]
    /// Moves a step to `skipped`, `cancelled`, `pending` or `destroyed` with a reason.
    @discardableResult
    func mark(_ step: StepID, run: Int64, state: StepState, message: String, attempt: Int?) throws -> Event

    /// Appends events (one transaction); returns them as stored.
    @discardableResult
    func append(_ events: [Event]) throws -> [Event]
    /// Events, oldest first, filtered by run and step.
    func events(run: Int64?, step: StepID?, limit: Int) throws -> [Event]

    /// Persists a fan-out's items so every later run and `down` sees the same graph.
    func saveExpansion(_ fanOut: StepID, items: [String]) throws
    /// The persisted items of a fan-out, if it was expanded.
    func expansion(_ fanOut: StepID) throws -> [String]?

    /// Steps with an attempt that was applied and succeeded in `run` (adoptions excluded): what
    /// "a dependency was applied in this run" means across a resume.
    func stepsApplied(inRun run: Int64) throws -> Set<StepID>

    /// Intent for a child process: recorded (and committed) before the child is let run, so a
    /// killed run's children can be found and stopped; returns the record with its id.
    func recordChild(_ child: ChildRecord) throws -> ChildRecord
    /// Forgets a child once it has exited (or has been stopped).
    func removeChild(id: Int64) throws
    /// Every recorded child: the ones still running now, and what killed runs left behind.
    func children() throws -> [ChildRecord]

    /// SQLite's `PRAGMA integrity_check` answer ("ok" when healthy).
    func integrityCheck() throws -> String
}

extension RunStore {
    /// Records success without the inputs by key (`provision plan` then says they were not recorded).
    @discardableResult
    public func markSucceeded(_ step: StepID, run: Int64, fingerprint: String, outputs: StepOutputs, duration: Duration, adopted: Bool,
                              attempt: Int?, message: String) throws -> Event {
        try markSucceeded(step, run: run, fingerprint: fingerprint, inputs: nil, outputs: outputs, duration: duration, adopted: adopted,
                          attempt: attempt, message: message)
    }

    /// Records success with the duration as the event's message.
    @discardableResult
    public func markSucceeded(_ step: StepID, run: Int64, fingerprint: String, outputs: StepOutputs, duration: Duration, adopted: Bool) throws -> Event {
        try markSucceeded(step, run: run, fingerprint: fingerprint, outputs: outputs, duration: duration, adopted: adopted,
                          attempt: nil, message: duration.formatted)
    }

    /// Moves a step to another state, its event naming no attempt.
    @discardableResult
    public func mark(_ step: StepID, run: Int64, state: StepState, message: String) throws -> Event {
        try mark(step, run: run, state: state, message: message, attempt: nil)
    }
}
