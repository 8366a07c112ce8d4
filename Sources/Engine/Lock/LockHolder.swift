import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who holds the one-writer lock on a state directory.
public struct LockHolder: Sendable, Codable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var host: String
    public var since: Date
    /// The command line it was started with (`provision up`).
    public var command: String
    /// The kernel's start time of the process (from /proc), so a reused pid is not mistaken for the holder.
    public var processStart: String?

    /// The current process as a holder.
    public static func current(command: String) -> LockHolder {
        let pid = getpid()
        return LockHolder(pid: pid, host: Self.hostName, since: Date(), command: command, processStart: Self.processStart(pid))
    }

    /// This machine's host name.
    public static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the holder is certainly gone: same host, and no process with its pid and start time.
    /// A holder on another host is never presumed dead.
    public var isDead: Bool {
        guard host == Self.hostName else { return false }
        guard kill(pid, 0) == 0 || errno == EPERM else { return true }
        guard let recorded = processStart, let now = Self.processStart(pid) else { return false }
        return recorded != now
    }

    public var description: String {
        "pid \(pid) on host \(host) (\(command)) since \(ISO8601DateFormatter().string(from: since))"
    }

    /// Field 22 of /proc/PID/stat: the process start time in clock ticks since boot.
    public static func processStart(_ pid: Int32) -> String? {
        guard let fields = ProcStat.fields(pid), fields.count > 19 else { return nil }
        return String(fields[19])
    }
}
