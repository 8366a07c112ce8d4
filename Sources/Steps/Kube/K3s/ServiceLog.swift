import PlanLanguage
import Transport

/// Where a service's output goes on a node, and the shell commands that read it: journald
/// (`journalctl -u <unit>`) under systemd, the OpenRC service's log file otherwise.
///
/// K3s's own units work this way (only its OpenRC script writes /var/log/k3s*.log), so every
/// diagnosis reads through this type.
package struct ServiceLog: Sendable, Equatable {
    /// The unit or service name (`k3s-agent`).
    let unit: String
    /// The node's init system.
    let initSystem: InitSystem

    /// The log file an OpenRC service writes (`/var/log/<unit>.log`).
    var file: String { "/var/log/\(unit).log" }

    /// How a person reads it on the node.
    var name: String {
        switch initSystem {
        case .systemd: "journalctl -u \(unit)"
        case .openrc: file
        }
    }

    /// Prints a mark of the log's current end, for `since` (a journal cursor, or the file's size).
    var markCommand: String {
        switch initSystem {
        case .systemd: "journalctl -u \(unit) -n 1 --show-cursor --no-pager -q 2>/dev/null | sed -n 's/^-- cursor: //p'"
        case .openrc: "stat -c %s \(file) 2>/dev/null || echo 0"
        }
    }

    /// Prints the last `lines` lines written after `mark` (all of them for an empty mark).
    func since(_ mark: String, lines: Int) -> String {
        switch initSystem {
        case .systemd:
            let after = mark.isEmpty ? "" : " --after-cursor=\(Shell.quoted(mark))"
            return "journalctl -u \(unit)\(after) --no-pager -q -o cat 2>/dev/null | tail -n \(lines)"
        case .openrc:
            return "tail -c +\((Int(mark) ?? 0) + 1) \(file) 2>/dev/null | tail -n \(lines)"
        }
    }

    /// Prints the last `lines` lines.
    func tail(_ lines: Int) -> String {
        switch initSystem {
        case .systemd: "journalctl -u \(unit) -n \(lines) --no-pager -q -o cat 2>/dev/null"
        case .openrc: "tail -n \(lines) \(file) 2>/dev/null"
        }
    }
}
