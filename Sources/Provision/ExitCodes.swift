import ArgumentParser

/// Every exit code `provision` uses, in one place (the README lists them too).
enum ExitCodes {
    /// A step failed (others may have succeeded); `provision status` shows which.
    static let stepFailed = ExitCode(1)
    /// The plan or the arguments are wrong; nothing was run.
    static let invalidInput = ExitCode(2)
    /// Another process holds the state lock, or a dead one left it.
    static let locked = ExitCode(3)
    /// The run store cannot be opened or written (full disk, damaged file, permissions).
    static let storeFailure = ExitCode(4)
    /// `resume` found no unfinished run.
    static let nothingToResume = ExitCode(5)
    /// `status --audit` found steps whose check no longer holds.
    static let drift = ExitCode(6)
    /// `plan --detailed-exitcode`: any error (terraform's meaning; without the flag errors keep the codes above).
    static let planError = ExitCode(1)
    /// `plan --detailed-exitcode`: `up` would change something.
    static let planHasChanges = ExitCode(2)
    /// Stopped by Ctrl-C (or SIGTERM); `provision resume` continues.
    static let interrupted = ExitCode(130)
}
