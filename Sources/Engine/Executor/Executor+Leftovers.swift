import Foundation

/// What a killed run left running. Every child of an attempt is recorded in the store before it
/// runs and forgotten once it has exited (`ProcessSupervisor.recording(to:)`), so a record found
/// when a run starts names a child of a `provision` that was killed: its process group may still be
/// applying a step. Before any step is checked or applied, each one is stopped (SIGTERM, or the
/// command's own `stopSignal`, to its group; SIGKILL after `leftoverGrace` or the command's own
/// `stopGrace`), so a step never runs twice at the same time.
extension Executor {
    /// Stops every recorded child of an earlier run, all at once, and forgets it; says so in the
    /// step's log and events. Throws `LeftoverChildError` when one cannot be stopped.
    func stopLeftovers() async throws {
        let leftovers = try store.children()
        guard !leftovers.isEmpty else { return }
        let host = LockHolder.hostName
        if let remote = leftovers.first(where: { $0.host != host }) { throw LeftoverChildError.otherHost(remote) }
        let grace = leftoverGrace
        let results = await withTaskGroup(of: (ChildRecord, LeftoverProcessGroup.StopResult).self) { group in
            for child in leftovers {
                group.addTask {
                    (child, await LeftoverProcessGroup(pid: child.pid, processStart: child.processStart)
                        .stop(signal: child.stopSignal ?? SIGTERM, grace: child.stopGrace ?? grace))
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for (child, result) in results.sorted(by: { $0.0.id < $1.0.id }) {
            let what = "pid \(child.pid) (\(child.command)) left running by run \(child.run) attempt \(child.attempt)"
            switch result {
            case .alreadyGone: break
            case .terminated:
                let signal = ProcessResult.signalName(child.stopSignal ?? SIGTERM)
                report(child, "\(what): stopped it (\(signal)) before running this step again")
            case .killed: report(child, "\(what): killed it (SIGKILL after \((child.stopGrace ?? grace).formatted)) before running this step again")
            case .stuck: throw LeftoverChildError.stuck(child)
            }
            try store.removeChild(id: child.id)
        }
    }

    private func report(_ child: ChildRecord, _ message: String) {
        context(for: child.step, attempt: child.attempt, item: nil, upstream: [:]).log.write(message)
    }
}
