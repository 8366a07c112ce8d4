import PlanLanguage
import Transport

/// The shell commands that drive a node's service manager for one unit: OpenRC's `rc-service`
/// (output in the unit's log file) or systemd's `systemctl` (output in journald).
package struct ServiceControl: Sendable {
    let unit: ServiceUnit
    let initSystem: InitSystem

    /// Control of `unit` under `initSystem`.
    package init(unit: ServiceUnit, initSystem: InitSystem) {
        self.unit = unit
        self.initSystem = initSystem
    }

    /// Exits 0 when the service manager runs the unit.
    var status: String {
        switch initSystem {
        case .openrc: "rc-service \(unit.name) status"
        case .systemd: "systemctl is-active --quiet \(unit.name)"
        }
    }

    /// Exits 0 when the unit runs, asked the cheapest way: the very test `rc-service status` makes
    /// of a supervise-daemon unit (started, and its supervisor not gone), asked of OpenRC's helpers
    /// directly at a twentieth of the cost; under systemd, `systemctl is-active`, or what one
    /// `systemctl is-active` for all of the node's units said when a batch's prelude asked it
    /// (`activePrelude(of:)`).
    var running: String {
        switch initSystem {
        case .openrc: "/lib/rc/bin/service_started \(unit.name) && ! /lib/rc/bin/service_crashed \(unit.name)"
        case .systemd: #"case "${__pb_active-}" in "") \#(status) ;; *" \#(unit.name) "*) true ;; *) false ;; esac"#
        }
    }

    /// A `CommandBatch` prelude for a systemd node: one `systemctl is-active` for every unit in
    /// `units` (each call costs the node ~10 ms of systemctl's start and a D-Bus round trip with
    /// PID 1), leaving the active ones in `__pb_active`, space-separated and padded, where
    /// `running` reads them. When systemctl does not answer for every unit, `__pb_active` stays
    /// unset and each unit is asked by itself.
    static func activePrelude(of units: [String]) -> String {
        let names = units.joined(separator: " ")
        return #"__pb_active=$(systemctl is-active \#(names) 2>/dev/null | { out=' '; for u in \#(names); do read -r s || exit 1; [ "$s" = active ] && out="$out$u "; done; printf '%s' "$out"; }) || unset __pb_active"#
    }

    var start: String {
        switch initSystem {
        case .openrc: "rc-service \(unit.name) start"
        case .systemd: "systemctl start \(unit.name)"
        }
    }

    var restart: String {
        switch initSystem {
        case .openrc: "rc-service \(unit.name) restart"
        case .systemd: "systemctl restart \(unit.name)"
        }
    }

    /// Stops the unit and removes its files (unit, and under systemd its environment file).
    var remove: String {
        switch initSystem {
        case .openrc: "if [ -e \(unit.scriptPath) ]; then rc-service \(unit.name) stop; fi; rm -f \(unit.scriptPath)"
        case .systemd:
            "if [ -e \(unit.unitPath) ]; then systemctl disable --now \(unit.name) >/dev/null 2>&1; fi; rm -f \(unit.unitPath) \(unit.environmentPath); systemctl daemon-reload"
        }
    }

    /// Prints the PID of the unit's program (not a supervisor's); nothing when it has none.
    var mainPID: String {
        switch initSystem {
        case .openrc:
            "sup=$(cat /run/supervise-\(unit.name).pid 2>/dev/null) && pgrep -P \"$sup\" 2>/dev/null | head -n 1; true"
        case .systemd:
            "pid=$(systemctl show -p MainPID --value \(unit.name)); [ \"$pid\" != 0 ] && echo $pid; true"
        }
    }

    /// Where its output is, for people.
    package var logName: String {
        switch initSystem {
        case .openrc: unit.logFile
        case .systemd: "journalctl -u \(unit.name)"
        }
    }

    /// Prints its output's last `lines` lines.
    func tail(_ lines: Int) -> String {
        switch initSystem {
        case .openrc: "tail -n \(lines) \(Shell.quoted(unit.logFile))"
        case .systemd: "journalctl -u \(unit.name) -n \(lines) --no-pager -q -o cat"
        }
    }
}
