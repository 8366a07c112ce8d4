import Engine
import Foundation
import PlanLanguage
import Transport

/// Installs, inspects and removes placed services on one node through its service manager
/// (OpenRC's `rc-service`, or `systemctl` on a systemd node), over whatever runs commands there (SSH).
///
/// Idempotent: `install` compares the digest the node keeps with the service's own; an equal
/// digest and a running unit change nothing (same PIDs), a different one uploads the files and
/// restarts only that unit.
public struct ServiceInstaller: Sendable {
    /// Runs shell commands on the node.
    public var node: any CommandRunner
    /// Writes a file on the node.
    public var upload: @Sendable (_ data: Data, _ path: String, _ mode: Int32) async throws -> Void
    /// The node's service manager.
    public var initSystem: InitSystem

    public init(node: any CommandRunner, initSystem: InitSystem = .openrc, upload: @escaping @Sendable (Data, String, Int32) async throws -> Void) {
        self.node = node
        self.initSystem = initSystem
        self.upload = upload
    }

    /// An installer for a node of `pool` (commands and SFTP on the node's one session); with an
    /// `attempt`, its commands first wait for what earlier attempts of that step left running on
    /// the node.
    public init(pool: SSHPool, endpoint: SSHEndpoint, attempt: RemoteAttempt? = nil, initSystem: InitSystem = .openrc) {
        self.init(node: NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: attempt), initSystem: initSystem) { data, path, mode in
            try await pool.upload(data, to: path, on: endpoint, mode: mode)
        }
    }

    /// The service manager's commands for `service`'s unit on this node.
    func control(_ service: PlacedService) -> ServiceControl {
        ServiceControl(unit: service.unit, initSystem: initSystem)
    }

    /// Where `service`'s output is on this node (its log file, or `journalctl -u <unit>`).
    public func logName(_ service: PlacedService) -> String {
        control(service).logName
    }

    /// Runs `command` on the node.
    public func run(_ command: String, _ timeout: Duration) async throws -> CommandResult {
        try await node.run(command, timeout: timeout)
    }

    /// What the node says about a service.
    public struct State: Sendable, Equatable {
        /// The installed files are this service's (same digest).
        public var current: Bool
        /// The service manager runs it.
        public var running: Bool
        /// Its health probe passes.
        public var healthy: Bool

        /// Everything holds: nothing to do.
        public var satisfied: Bool { current && running && healthy }

        /// The first thing that does not hold, for a check's message.
        public var problem: String? {
            if !current { return "its unit or configuration differs from the plan's" }
            if !running { return "its unit is not running" }
            if !healthy { return "it does not answer its health probe, or what it makes after starting (topics) is missing" }
            return nil
        }
    }

    /// Reads the service's state without changing anything.
    public func state(of service: PlacedService) async throws -> State {
        Self.state(of: service, from: try await run(Self.stateScript(of: service, initSystem: initSystem), .seconds(40)).stdout, initSystem: initSystem)
    }

    /// The one read-only command whose output `state(of:from:)` reads: the digest the node keeps,
    /// then one word per condition that holds, stopping at the first that does not (every `up`
    /// checks every unit, so it is one round trip, or a part of one: `UnitReadings`). Running is
    /// the service manager's own judgement (`ServiceControl.running`); a unit whose health is
    /// running is not asked twice. The digest is read by the shell itself (`read`, not `cat`: a
    /// process start fewer per unit on every `up`).
    static func stateScript(of service: PlacedService, initSystem: InitSystem) -> String {
        let control = ServiceControl(unit: service.unit, initSystem: initSystem)
        return """
            __digest=; IFS= read -r __digest < \(service.digestPath) 2>/dev/null; printf '%s\\n' "$__digest"; \
            { \(control.running); } >/dev/null 2>&1 || exit 0; echo running; \
            (\(service.health == .running ? "true" : probeCommand(service, control: control))) >/dev/null 2>&1 || exit 0; \
            (\(service.ready ?? "true")) >/dev/null 2>&1 || exit 0; echo healthy
            """
    }

    /// The service's state from what `stateScript(of:initSystem:)` printed.
    static func state(of service: PlacedService, from output: String, initSystem: InitSystem) -> State {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let digest = lines.first?.trimmingCharacters(in: .whitespaces) ?? ""
        return State(current: digest == service.digest(for: initSystem), running: lines.contains("running"), healthy: lines.contains("healthy"))
    }

    /// Makes the node run `service` as planned and waits until it is healthy and its after-start
    /// command succeeded.
    /// - Returns: whether anything was (re)started.
    @discardableResult
    public func install(_ service: PlacedService, timeout: Duration, log: @Sendable (String) -> Void) async throws -> Bool {
        if let problem = service.unit.problem { throw StepFailure(problem, retryable: false) }
        let before = try await state(of: service)
        var changed = false
        if !before.current {
            let unitFiles = initSystem == .systemd ? [service.unit.unitPath, service.unit.environmentPath] : [service.unit.scriptPath]
            let directories = Set((service.files.map(\.path) + [service.digestPath] + unitFiles).map { ($0 as NSString).deletingLastPathComponent })
            try await check(run("mkdir -p \(directories.sorted().map(Shell.quoted).joined(separator: " "))", .seconds(20)), "create directories")
            for file in service.files { try await upload(Data(file.contents.utf8), file.path, file.mode) }
            switch initSystem {
            case .openrc:
                try await upload(Data(service.unit.initScript.utf8), service.unit.scriptPath, 0o755)
            case .systemd:
                try await upload(Data(service.unit.environmentFile.utf8), service.unit.environmentPath, 0o600)
                try await upload(Data(service.unit.systemdUnit.utf8), service.unit.unitPath, 0o644)
                // One reload: `enable` would reload again by itself (systemd's PID 1 reloads every unit,
                // and a node's service steps run side by side).
                try await check(run("systemctl daemon-reload && systemctl enable --no-reload \(service.unit.name) 2>&1", .seconds(60)),
                                "enable \(service.unit.name)")
            }
            try await prepare(service)
            if before.running {
                log("\(service.node.name): restart \(service.unit.name) (its settings changed)")
                try await check(run(control(service).restart, .seconds(60)), "restart \(service.unit.name)")
            } else {
                try await startCleanly(service, reason: "not running", log: log)
            }
            try await upload(Data((service.digest(for: initSystem) + "\n").utf8), service.digestPath, 0o644)
            changed = true
        } else if !before.running {
            try await prepare(service)
            try await startCleanly(service, reason: "not running", log: log)
            changed = true
        } else if !before.healthy {
            try await prepare(service)  // what it needs may have gone (the broker's bucket)
        }
        let deadline = ContinuousClock.now + timeout
        while !(try await probe(service)) {
            guard ContinuousClock.now < deadline else {
                let tail = try? await run(control(service).tail(20), .seconds(20)).stdout
                throw StepFailure("""
                    \(service.unit.name) on \(service.node.name) did not become healthy within \(timeout) (\(service.health)); \
                    its log \(control(service).logName) ends with:
                    \(tail ?? "(unreadable)")
                    """)
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        if let command = service.afterStart {
            try await check(run(command, .seconds(60)), "after starting \(service.unit.name)")
        }
        log("\(service.node.name): \(service.unit.name) \(changed ? "started" : "already running") and healthy")
        return changed
    }

    /// Starts a unit the service manager does not run, from whatever state it is in: a supervisor
    /// that was killed leaves OpenRC saying "started" (start then does nothing) and its program
    /// running on unsupervised, maybe holding the unit's port. That orphan is stopped (SIGTERM, then
    /// SIGKILL after 10 s: a processor commits what it wrote), the unit's state reset
    /// (`rc-service zap`), and the unit started; it must then run under its supervisor.
    func startCleanly(_ service: PlacedService, reason: String, log: @Sendable (String) -> Void) async throws {
        let name = service.unit.name
        if initSystem == .systemd {
            // systemd is the node's PID 1: a unit's processes live in its cgroup and end with it, so
            // nothing runs on unsupervised; a unit that gave up (its start limit) is reset first.
            log("\(service.node.name): start \(name) (\(reason))")
            // Started, then asked whether it runs, in one round trip (exit 93: started, not active).
            let started = try await run("systemctl reset-failed \(name) >/dev/null 2>&1; systemctl start \(name) || exit; systemctl is-active \(name) || exit 93",
                                        .seconds(60))
            guard started.exitStatus != 93 else {
                throw StepFailure("""
                    \(name) on \(service.node.name) was started but systemd does not run it (\(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines))); \
                    'journalctl -u \(name)' on \(service.node.name) says why ('provision logs' shows it)
                    """)
            }
            try check(started, "start \(name)")
            return
        }
        // The orphan is the recorded child only while its command line still names the unit's
        // program (a PID can be reused; a script's process is its interpreter), and only when no
        // supervisor of this unit lives (likewise checked by name).
        let orphan = try await run("""
            pid=$(cat /run/openrc/options/\(name)/child_pid 2>/dev/null); \
            sup=$(cat /run/supervise-\(name).pid 2>/dev/null); \
            supervised=; if [ -n "$sup" ] && grep -q '^supervise-dae' /proc/$sup/comm 2>/dev/null; then supervised=yes; fi; \
            if [ -n "$pid" ] && [ -z "$supervised" ] && tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null | grep -qF -- \(Shell.quoted(service.unit.command)); then \
              kill -TERM "$pid"; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; \
              kill -KILL "$pid" 2>/dev/null; echo "$pid"; \
            fi; \
            rc-service \(name) zap >/dev/null 2>&1; true
            """, .seconds(30)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if !orphan.isEmpty { log("\(service.node.name): stopped \(name)'s process \(orphan), left running without its supervisor") }
        log("\(service.node.name): start \(name) (\(reason))")
        try await check(run("rc-service \(name) start", .seconds(60)), "start \(name)")
        let status = try await run("rc-service \(name) status 2>&1", .seconds(20))
        guard status.succeeded else {
            throw StepFailure("""
                \(name) on \(service.node.name) was started but its service manager does not run it \
                (\(status.stdout.trimmingCharacters(in: .whitespacesAndNewlines))); its log \(service.unit.logFile) on \
                \(service.node.name) says why ('provision logs' shows it)
                """)
        }
    }

    /// Runs the service's before-start command, if any.
    private func prepare(_ service: PlacedService) async throws {
        if let command = service.beforeStart { try await check(run(command, .seconds(30)), "prepare \(service.unit.name)") }
    }

    /// Stops the service and removes its unit and digest (its data stays with the node).
    public func remove(_ service: PlacedService) async throws {
        let name = service.unit.name
        try await check(run("\(control(service).remove); rm -f \(service.digestPath)", .seconds(60)), "stop \(name)")
    }

    /// The PID of the program the unit runs (not its supervisor), for tests and audits.
    public func pid(of service: PlacedService) async throws -> Int? {
        let out = try await run(control(service).mainPID, .seconds(20)).stdout
        return Int(out.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private func probe(_ service: PlacedService) async throws -> Bool {
        try await run(Self.probeCommand(service, control: control(service)), .seconds(20)).succeeded
    }

    /// The shell command that exits 0 when the service answers its health probe. HTTP is asked
    /// by bash itself (its /dev/tcp): every `up` probes every unit, and curl's start costs the
    /// node ~10 ms of CPU a probe. Addresses are the node's own, so the connection is local.
    static func probeCommand(_ service: PlacedService, control: ServiceControl) -> String {
        switch service.health {
        case .running: return "\(control.status) >/dev/null 2>&1"
        case .tcp(let host, let port): return "timeout 2 bash -c '</dev/tcp/\(host)/\(port)' 2>/dev/null"
        case .http(let host, let port, let path):
            // In bash's own /dev/tcp: in the shell itself when it is bash (a process start fewer
            // per probe, every `up`), else in a bash of its own.
            let probe = #"exec 3<>/dev/tcp/\#(host)/\#(port) && printf "GET \#(path) HTTP/1.0\r\nHost: \#(host):\#(port)\r\n\r\n" >&3 && read -t 2 -r _ code _ <&3 && [[ $code == [23]?? ]]"#
            return #"if [ -n "${BASH_VERSION-}" ]; then \#(probe); else bash -c \#(Shell.quoted(probe)) 2>/dev/null; fi"#
        }
    }

    private func check(_ result: CommandResult, _ what: String) throws {
        guard result.succeeded else { throw StepFailure("\(what) failed: \(result.summary) \(result.stdout.suffix(500))\(result.stderr.suffix(500))") }
    }
}
