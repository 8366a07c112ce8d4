import Foundation
import Transport

/// One long-running program on a node, as the node's service manager (OpenRC) runs it: supervised
/// by `supervise-daemon`, respawned with a delay when it dies (at most `respawnMax` times per
/// `respawnPeriod`), its output in its own log file under `/var/log/provision/`.
///
/// The unit is rendered to an OpenRC init script (`/etc/init.d/<name>`); the script's digest
/// tells whether a changed setting must restart the service.
public struct ServiceUnit: Sendable, Equatable {
    /// The service name: lowercase letters, digits and dashes (`pipeline-processor`).
    public var name: String
    /// One line for `rc-status` and the script's header.
    public var description: String
    /// Absolute path of the program.
    public var command: String
    public var arguments: [String] = []
    /// Environment of the program. Values may not contain whitespace or quotes.
    public var environment: [String: String] = [:]
    /// The user to run as; nil for root.
    public var user: String?
    /// Working directory; nil for `/`.
    public var directory: String?
    /// Seconds between a crash and the restart.
    public var respawnDelay = 1
    /// Restarts allowed per `respawnPeriod` seconds before the supervisor gives up.
    public var respawnMax = 10
    public var respawnPeriod = 60

    public init(name: String, description: String, command: String, arguments: [String] = [], environment: [String: String] = [:],
                user: String? = nil, directory: String? = nil) {
        self.name = name
        self.description = description
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.user = user
        self.directory = directory
    }

    /// Where the init script goes on the node.
    public var scriptPath: String { "/etc/init.d/\(name)" }
    /// The program's own log (stdout and stderr) on the node.
    public var logFile: String { "/var/log/provision/\(name).log" }

    /// Why the unit cannot be rendered safely, or nil.
    public var problem: String? {
        guard !name.isEmpty, name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) else {
            return "service name '\(name)' must be lowercase letters, digits and dashes"
        }
        guard command.hasPrefix("/") else { return "service \(name): command '\(command)' must be an absolute path" }
        for (key, value) in environment where !key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) || value.contains(where: { $0.isWhitespace || "'\"\\`$".contains($0) }) {
            return "service \(name): environment \(key) must be a plain name and a value without whitespace, quotes or $"
        }
        return nil
    }

    /// The OpenRC init script.
    public var initScript: String {
        var lines = [
            "#!/sbin/openrc-run",
            "# Written by provision; changes are overwritten by the next `provision up`.",
            "description=\(Shell.quoted(description))",
            "supervisor=supervise-daemon",
            "command=\(Shell.quoted(command))",
            "command_args=\(Shell.quoted(arguments.map(Shell.quoted).joined(separator: " ")))",
            "output_log=\(Shell.quoted(logFile))",
            "error_log=\(Shell.quoted(logFile))",
            "respawn_delay=\(respawnDelay)",
            "respawn_max=\(respawnMax)",
            "respawn_period=\(respawnPeriod)",
        ]
        if let user { lines.append("command_user=\(Shell.quoted(user))") }
        if let directory { lines.append("directory=\(Shell.quoted(directory))") }
        if !environment.isEmpty {
            let env = environment.sorted { $0.key < $1.key }.map { "--env \($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("supervise_daemon_args=\(Shell.quoted(env))")
        }
        lines += [
            "",
            "start_pre() {",
            "  checkpath --directory --mode 0755 /var/log/provision",
            "}",
            "",
        ]
        return lines.joined(separator: "\n")
    }
}
