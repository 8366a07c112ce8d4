/// The unit as systemd runs it on a systemd node: a unit file with `Restart=on-failure` (restarted
/// `respawnDelay` seconds after it dies, at most `respawnMax` times per `respawnPeriod`), its output
/// in journald, its environment in its own file (0600, outside the unit file).
extension ServiceUnit {
    /// Where the unit file goes on a systemd node.
    public var unitPath: String { "/etc/systemd/system/\(name).service" }
    /// The unit's environment file on a systemd node (0600).
    public var environmentPath: String { "/etc/provision/env/\(name).env" }

    /// The systemd unit file.
    public var systemdUnit: String {
        var service = [
            "Type=simple",
            "ExecStart=" + ([command] + arguments).map(Self.systemdQuoted).joined(separator: " "),
            "EnvironmentFile=-\(environmentPath)",
            "Restart=on-failure",
            "RestartSec=\(respawnDelay)",
            "LogsDirectory=provision",
            "StandardOutput=journal",
            "StandardError=journal",
        ]
        if let user { service.append("User=\(user)") }
        if let directory { service.append("WorkingDirectory=\(directory)") }
        return ([
            "# Written by provision; changes are overwritten by the next `provision up`.",
            "[Unit]",
            "Description=\(description)",
            "StartLimitIntervalSec=\(respawnPeriod)",
            "StartLimitBurst=\(respawnMax)",
            "",
            "[Service]",
        ] + service + [
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]).joined(separator: "\n")
    }

    /// The environment file's lines (`KEY=value`; `problem` keeps values free of quotes and spaces).
    public var environmentFile: String {
        environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
    }

    /// One word of an `ExecStart=` line: double-quoted, with systemd's specifiers and variables escaped.
    static func systemdQuoted(_ word: String) -> String {
        let escaped = word.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: "$", with: "$$")
        return "\"\(escaped)\""
    }
}
