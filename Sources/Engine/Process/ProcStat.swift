import Foundation

/// `/proc/PID/stat`, read the one way: its fields after the command name (which may hold spaces
/// and parentheses), so that index 0 is the state (field 3), 1 the parent pid, 2 the process
/// group and 19 the start time (field 22).
enum ProcStat {
    /// The fields of `pid`'s stat after the command name; nil when no such process is readable.
    static func fields(_ pid: Int32) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }
}
