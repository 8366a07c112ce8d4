/// Why the state could not be locked for writing.
public enum LockError: Error, CustomStringConvertible, Sendable {
    /// Another live process is writing this state.
    case held(by: LockHolder, stateDirectory: String)
    /// A process that held the lock is gone without releasing it.
    case stale(holder: LockHolder, stateDirectory: String)
    /// `unlock` was asked to clear a lock whose holder is still alive.
    case holderAlive(LockHolder)

    public var description: String {
        switch self {
        case .held(let holder, let dir):
            return """
                the state in \(dir) is locked by \(holder).
                Wait for it to finish, or stop it (Ctrl-C) and run 'provision resume'. \
                If you know it is gone, run 'provision unlock --force'.
                """
        case .stale(let holder, let dir):
            return """
                the state in \(dir) has a stale lock: \(holder) is no longer running \
                (it was killed or crashed before releasing it).
                Run 'provision unlock' to clear it, then 'provision resume' to continue that run.
                """
        case .holderAlive(let holder):
            return "the lock holder \(holder) is still running; stop it first, or pass --force if it is stuck"
        }
    }
}
