import Foundation

/// The children of one step attempt, recorded in the run store: what the executor hands to the
/// attempt's `ProcessSupervisor` (see `ProcessSupervisor.recording(to:)`).
struct AttemptChildren: ChildRegistry {
    let store: any RunStore
    let step: StepID
    let run: Int64
    let attempt: Int

    func register(pid: Int32, processStart: String?, command: ProcessCommand, description: String) throws -> Int64 {
        try store.recordChild(ChildRecord(step: step, run: run, attempt: attempt, pid: pid, processStart: processStart,
                                          host: LockHolder.hostName, command: description, stopGrace: command.stopGrace,
                                          stopSignal: command.stopSignal)).id
    }

    func unregister(_ token: Int64) {
        // A record left behind names a process that has exited: the next run finds it gone.
        try? store.removeChild(id: token)
    }
}
