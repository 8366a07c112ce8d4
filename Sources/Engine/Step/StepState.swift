/// Where a step stands in the run store.
public enum StepState: String, Sendable, Codable, CaseIterable {
    /// Known but not started in the current run.
    case pending
    /// Intent committed: an attempt started and has not been recorded as finished.
    /// Found on resume, it means the attempt was interrupted.
    case running
    /// Applied (or adopted through `check`) and its outputs recorded.
    case succeeded
    /// Every allowed attempt failed, or the failure was not retryable.
    case failed
    /// Not run because a step it depends on failed or was skipped.
    case skipped
    /// Stopped by Ctrl-C before it finished; resume runs it again.
    case cancelled
    /// Torn down by `provision down`.
    case destroyed
}
