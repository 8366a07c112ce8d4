/// A child of a killed run is still running and cannot be stopped from here, so no step may run
/// (it could run twice at once).
public enum LeftoverChildError: Error, CustomStringConvertible, Sendable {
    /// The child runs on another machine than this `provision`.
    case otherHost(ChildRecord)
    /// It survived SIGKILL (a process stuck in the kernel).
    case stuck(ChildRecord)

    public var description: String {
        switch self {
        case .otherHost(let child):
            "step '\(child.step)' left pid \(child.pid) (\(child.command)) running on host \(child.host), run \(child.run) attempt \(child.attempt); "
                + "this machine cannot stop it: run 'provision resume' on \(child.host), or stop it there and run 'provision unlock --force' here"
        case .stuck(let child):
            "step '\(child.step)' left pid \(child.pid) (\(child.command)) from run \(child.run) and it does not exit even after SIGKILL "
                + "(stuck in the kernel: look at /proc/\(child.pid)/stack); run 'provision resume' once it has exited"
        }
    }
}
