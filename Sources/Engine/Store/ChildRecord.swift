import Foundation

/// A child process an attempt started, as the run store keeps it while the child runs: enough to
/// find it again after `provision` itself was killed (pid *and* kernel start time, so a reused pid
/// is never mistaken for it) and to say whose it was.
public struct ChildRecord: Sendable, Codable, Equatable {
    /// Row id in the store.
    public var id: Int64
    /// The step whose attempt started it.
    public var step: StepID
    /// The run of that attempt.
    public var run: Int64
    /// The attempt (0 for a `check` or a teardown).
    public var attempt: Int
    /// Process id; also its process group id (every child leads its own group).
    public var pid: Int32
    /// Kernel start time of the process (`/proc/PID/stat` field 22).
    public var processStart: String?
    /// The machine it runs on (`LockHolder.hostName`).
    public var host: String
    /// The command line, redacted and shortened, for messages.
    public var command: String
    /// When it was started.
    public var startedAt: Date
    /// How long it gets between the stop signal and SIGKILL when a later run stops it (nil: the
    /// executor's default).
    public var stopGrace: Duration?
    /// The signal that asks it to stop (nil: SIGTERM).
    public var stopSignal: Int32?

    /// Creates a record.
    public init(id: Int64 = 0, step: StepID, run: Int64, attempt: Int, pid: Int32, processStart: String?, host: String,
                command: String, startedAt: Date = Date(), stopGrace: Duration? = nil, stopSignal: Int32? = nil) {
        self.id = id
        self.step = step
        self.run = run
        self.attempt = attempt
        self.pid = pid
        self.processStart = processStart
        self.host = host
        self.command = command
        self.startedAt = startedAt
        self.stopGrace = stopGrace
        self.stopSignal = stopSignal
    }
}
