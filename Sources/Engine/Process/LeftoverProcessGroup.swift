import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The process group of a child recorded by an earlier, killed run (`ChildRecord`): the child led
/// its own group, so the group id is its pid, and whatever it started without leaving the group
/// (a shell's `sleep`, terraform's providers) is part of it.
///
/// Identity: while a process with the leader's pid exists, the group is ours only if that process
/// has the recorded start time (otherwise the pid was reused, which the kernel does only once the
/// old group is empty). Once the leader is gone, the kernel does not reuse its pid while any member
/// of its group lives, so members with that group id are ours. Zombies do not count: an orphan may
/// be reparented to a PID 1 that never reaps.
public struct LeftoverProcessGroup: Sendable, Hashable {
    /// The group id: the recorded child's pid.
    public let pgid: Int32
    /// The recorded kernel start time of the leader.
    public let leaderStart: String?

    /// The group of `pid`, started at `processStart`.
    public init(pid: Int32, processStart: String?) {
        self.pgid = pid
        self.leaderStart = processStart
    }

    /// The live (non-zombie) processes of the group now; empty when nothing of it runs.
    public var members: [Int32] {
        if let current = LockHolder.processStart(pgid), current != leaderStart { return [] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name -> Int32? in
            guard let pid = Int32(name), let fields = ProcStat.fields(pid),
                  fields.count > 2, fields[0] != "Z", fields[0] != "X", Int32(fields[2]) == pgid else { return nil }
            return pid
        }
    }

    /// Whether anything of the group still runs.
    public var isAlive: Bool { !members.isEmpty }

    /// How a `stop` ended.
    public enum StopResult: Sendable, Equatable {
        /// Nothing of the group was running.
        case alreadyGone
        /// It exited after the stop signal.
        case terminated
        /// It had to be killed with SIGKILL after the grace.
        case killed
        /// It still runs after SIGKILL (a process stuck in the kernel): nothing more can be done.
        case stuck
    }

    /// `signal` (SIGTERM unless told) to the group, SIGKILL after `grace`, then waits until no
    /// member is left (or `killWait` passes). Not cancellable: it ends within `grace + killWait`.
    public func stop(signal: Int32 = SIGTERM, grace: Duration, killWait: Duration = .seconds(10)) async -> StopResult {
        guard isAlive else { return .alreadyGone }
        kill(-pgid, signal)
        if await waitGone(for: grace) { return .terminated }
        kill(-pgid, SIGKILL)
        return await waitGone(for: killWait) ? .killed : .stuck
    }

    private func waitGone(for limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while isAlive {
            guard ContinuousClock.now < deadline else { return false }
            // Not `Task.sleep`: a cancelled task must still wait for the group to end.
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { continuation.resume() }
            }
        }
        return true
    }
}
