import Foundation

/// Everything a step may use while it runs, handed to it by the executor.
public struct StepContext: Sendable {
    /// The run this attempt belongs to.
    public let runID: Int64
    /// The step being run.
    public let stepID: StepID
    /// 1-based attempt number within the run (0 for `check` and teardown calls).
    public let attempt: Int
    /// Outputs of the step's dependencies, by step id; a fan-out dependency contributes each child.
    public let upstream: [StepID: StepOutputs]
    /// The item a fan-out created this step for, if any.
    public let item: String?
    /// The per-plan state directory (0700).
    public let stateDirectory: URL
    /// Where the step's log lines go (already redacted when written).
    public let log: StepLog
    /// Removes secret values from any text.
    public let redactor: Redactor
    /// Starts child processes so that cancellation and a second Ctrl-C reach them.
    public let processes: ProcessSupervisor
    /// What a step may remember outside its outputs (pinned host keys, endpoints of the machines
    /// it created); the rest of the run store is the executor's.
    public let store: any StepStore
    /// Set for teardowns of `provision down --keep-infra`: the machines stay (their steps,
    /// `Step.isInfrastructure`, are kept), so what this step put on them must go now; otherwise
    /// removing the machines may make a teardown moot.
    public var keepsInfrastructure = false
    /// The outputs this step recorded when it last succeeded, given to a check of an unchanged
    /// step (`checksEveryRun`, `up --recheck`): a check that finds them still true may return them
    /// instead of measuring everything again. Nil for a step never succeeded, and in audits.
    public var recorded: StepOutputs?

    /// Creates a context; the executor does this, tests may too.
    public init(
        runID: Int64, stepID: StepID, attempt: Int, upstream: [StepID: StepOutputs], item: String?,
        stateDirectory: URL, log: StepLog, redactor: Redactor, processes: ProcessSupervisor, store: any StepStore
    ) {
        self.runID = runID
        self.stepID = stepID
        self.attempt = attempt
        self.upstream = upstream
        self.item = item
        self.stateDirectory = stateDirectory
        self.log = log
        self.redactor = redactor
        self.processes = processes
        self.store = store
    }

    /// Identifies this attempt of the step among every attempt any `provision` makes
    /// (`r7.a2.p4121.s98231`: run, attempt, this process and its start time), for what a step starts
    /// outside this machine's process table (a command on a node), so that a later attempt can
    /// tell its own commands from those a killed one left running. Nil when the context records no
    /// children (an audit's read-only checks, which must never stop anything).
    public var attemptIdentity: String? {
        guard processes.isRecording else { return nil }
        let pid = getpid()
        return "r\(runID).a\(attempt).p\(pid).s\(LockHolder.processStart(pid) ?? "0")"
    }

    /// Hides `value` from this run's logs, events, errors and outputs from now on: for a secret the
    /// step learns while it runs (a join token read from a node).
    public func addSecret(_ value: String) {
        redactor.add([value])
    }
}
