import Foundation

/// Something that happened during a run, kept in the event table and streamed by `--json`.
public struct Event: Sendable, Codable, Equatable {
    /// What kind of thing happened.
    public enum Kind: String, Sendable, Codable {
        case runStarted = "run.started"
        case runResumed = "run.resumed"
        case runFinished = "run.finished"
        case stepStarted = "step.started"
        case stepAdopted = "step.adopted"
        case stepSucceeded = "step.succeeded"
        case stepUnchanged = "step.unchanged"
        case stepRetrying = "step.retrying"
        case stepFailed = "step.failed"
        case stepSkipped = "step.skipped"
        case stepCancelled = "step.cancelled"
        case stepTornDown = "step.torn_down"
        /// `down --keep-infra` kept an infrastructure step standing.
        case stepKept = "step.kept"
        case stepExpanded = "step.expanded"
        case output = "output"
        case lock = "lock"
        /// A pinned SSH host key was deliberately forgotten (`provision trust-host`).
        case hostKeyForgotten = "host_key.forgotten"
    }

    /// Position in the event table (nil until stored).
    public var seq: Int64?
    /// The run it belongs to.
    public var run: Int64
    /// When it happened.
    public var at: Date
    /// The step it concerns, if any.
    public var step: StepID?
    /// What happened.
    public var kind: Kind
    /// The attempt it concerns, if any.
    public var attempt: Int?
    /// Human-readable detail, redacted.
    public var message: String

    /// Creates an event stamped now.
    public init(run: Int64, step: StepID? = nil, kind: Kind, attempt: Int? = nil, message: String = "", at: Date = Date()) {
        self.run = run
        self.step = step
        self.kind = kind
        self.attempt = attempt
        self.message = message
        self.at = at
    }
}
