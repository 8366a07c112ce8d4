/// Where a `ProcessSupervisor` records each child before letting it run, so that a later run can
/// find and stop what a killed `provision` left running (see `LeftoverProcessGroup`).
///
/// The supervisor starts the child held at a gate, calls `register`, and only then lets it run:
/// a child that was never recorded never runs its command (if `provision` dies in between, the
/// gate closes and the child exits at once).
public protocol ChildRegistry: Sendable {
    /// Records a child that is about to run; returns a token for `unregister`. Throwing keeps the
    /// child from running at all.
    /// - Parameter command: the command as started; its `stopGrace` and `stopSignal` say how a
    ///   later run stops what is left of it.
    /// - Parameter description: the command line, redacted and shortened, for messages.
    func register(pid: Int32, processStart: String?, command: ProcessCommand, description: String) throws -> Int64
    /// Forgets a child that has exited.
    func unregister(_ token: Int64)
}
