import Foundation

/// How a run ended (or that it has not).
public enum RunStatus: String, Sendable, Codable {
    case running, succeeded, failed, cancelled
}

/// What `provision` was asked to do in a run.
public enum RunCommand: String, Sendable, Codable {
    case up, down
    /// `down --keep-infra`: tear down everything but the steps that make the machines
    /// (`Step.isInfrastructure`); `resume` continues it with the machines still kept.
    case downKeepingInfra = "down --keep-infra"

    /// Whether the run tears down (`down`, with or without `--keep-infra`).
    public var tearsDown: Bool { self != .up }
    /// Whether the run's teardown keeps the machines (`down --keep-infra`).
    public var keepsInfrastructure: Bool { self == .downKeepingInfra }
}

/// One invocation of `up` or `down` (continued by `resume`).
public struct RunRecord: Sendable, Codable, Equatable {
    public var id: Int64
    public var command: RunCommand
    public var planPath: String
    /// The plan text the run started with: `resume` continues exactly this plan.
    public var planText: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: RunStatus

    /// Creates a record; the store makes the real ones (`provision plan` makes one for a run not started).
    public init(id: Int64, command: RunCommand, planPath: String, planText: String, startedAt: Date, finishedAt: Date?, status: RunStatus) {
        self.id = id
        self.command = command
        self.planPath = planPath
        self.planText = planText
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
    }
}

/// The last known state of one step, across runs.
public struct StepRecord: Sendable, Codable, Equatable {
    public var id: StepID
    public var state: StepState
    /// Fingerprint of the inputs it last succeeded (or was started) with.
    public var fingerprint: String
    /// Attempts made in `run`.
    public var attempts: Int
    /// The run that last touched it.
    public var run: Int64
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Duration of the last finished attempt, milliseconds.
    public var durationMs: Int?
    /// The last error, redacted.
    public var lastError: String?
    /// Outputs of the last success, redacted.
    public var outputs: StepOutputs
    /// The inputs of the last success by key, redacted; nil for records written before the store
    /// kept them (schema 4), which `provision plan` reports as "inputs not recorded".
    public var inputs: RecordedInputs? = nil
}

/// One attempt of a step in a run, as the `attempts` table keeps it.
public struct AttemptRecord: Sendable, Codable, Equatable {
    public var run: Int64
    public var step: StepID
    /// 1-based within the run.
    public var attempt: Int
    public var startedAt: Date
    public var finishedAt: Date?
    /// `running`, `succeeded`, `adopted`, `failed`, `interrupted` (its `provision` was killed and a
    /// later attempt started), or the state it was moved to (`cancelled`).
    public var outcome: String
    /// The error of a failed attempt, redacted.
    public var error: String?
}
