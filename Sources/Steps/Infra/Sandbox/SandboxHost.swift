import Engine
import Foundation
import PlanLanguage
import Transport

#if canImport(Glibc)
import Glibc
#endif

/// **Stand-in for an EC2 machine** (moto's instances are only records): one sandbox machine, a
/// real `sshd` on its own loopback address with its own host key,
/// running as PID 1 of its own mount/UTS/PID namespaces with an overlay over `/etc`, `/usr`,
/// `/var`, `/opt`, `/home`, `/srv` and its own `/root`, `/run` and `/tmp`: files written on one
/// node are invisible to the others and to this machine. Its cloud-init status (read by the real
/// `cloud-init status`, from the node image) turns `done` `cloudInitDelay` after boot. When the
/// node image has OpenRC, it is started at boot as the node's service manager.
///
/// Everything lives in `directory`; killing the `unshare` process ends the node.
public struct SandboxHost: Codable, Sendable, Hashable {
    /// The EC2 instance this host plays.
    public let instanceID: String
    /// The node name (`worker-1`).
    public let node: String
    /// Loopback address sshd listens on.
    public let address: String
    /// sshd's port.
    public let port: Int
    /// The host's files (host key, config, overlay layers, logs).
    public let directory: String
    /// The running node.
    public let process: DetachedProcess
    /// What the node booted; absent in records written before systemd nodes existed (OpenRC).
    public let bootedInit: InitSystem?

    /// The node's init system.
    public var initSystem: InitSystem { bootedInit ?? .openrc }

    /// What to start.
    public struct Spec: Sendable {
        public var instanceID: String
        public var node: String
        public var address: String
        public var port: Int = 22
        public var directory: URL
        /// OpenSSH public key line authorised for root.
        public var authorizedKey: String
        /// When the cloud-init status turns `done` after boot.
        public var cloudInitDelay: Duration
        /// Overlay layer with cloud-init installed (built by scripts/bootstrap); nil for none.
        public var image: URL?
        /// What the node boots.
        public var initSystem: InitSystem
        /// The instance's user data as EC2 holds it: a systemd node's NoCloud seed (`user-data`).
        public var userData: String?

        public init(instanceID: String, node: String, address: String, port: Int = 22, directory: URL, authorizedKey: String,
                    cloudInitDelay: Duration, image: URL?, initSystem: InitSystem = .openrc, userData: String? = nil) {
            self.initSystem = initSystem
            self.userData = userData
            self.instanceID = instanceID
            self.node = node
            self.address = address
            self.port = port
            self.directory = directory
            self.authorizedKey = authorizedKey
            self.cloudInitDelay = cloudInitDelay
            self.image = image
        }
    }

    /// Boots a node and waits until its sshd accepts connections.
    /// The host key is generated once and kept, so restarting a node does not change it.
    public static func start(_ spec: Spec) async throws -> SandboxHost {
        let host = try await launch(spec)
        try await host.awaitSSH()
        return host
    }

    /// The node's console log (its init's output) in its directory.
    static let logName = "node.log"

    /// Starts the node (its files written, its namespaces entered, its init started) without
    /// waiting for its sshd: machines launched one after another boot side by side, each then
    /// awaited with `awaitSSH`.
    static func launch(_ spec: Spec) async throws -> SandboxHost {
        let dir = spec.directory
        let files = FileManager.default
        try files.createDirectory(at: dir.appendingPathComponent("root/.ssh"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(dir.path, 0o700)
        let hostKey = dir.appendingPathComponent("ssh_host_ed25519_key")
        if !files.fileExists(atPath: hostKey.path) {
            try await SSHKeys.generate(at: hostKey, comment: "\(spec.node)-host")
        }
        try write(spec.authorizedKey + "\n", to: dir.appendingPathComponent("root/.ssh/authorized_keys"), mode: 0o600)
        try write("# sandbox node: a clean shell start-up\n", to: dir.appendingPathComponent("root/.bashrc"), mode: 0o644)
        try write(sshdConfig(spec), to: dir.appendingPathComponent("sshd_config"), mode: 0o600)
        switch spec.initSystem {
        case .openrc: try write(bootScript(spec), to: dir.appendingPathComponent("boot.sh"), mode: 0o700)
        case .systemd: try prepareSystemd(spec)
        }
        let log = dir.appendingPathComponent(logName).path
        // The node's namespaces end with the `unshare` process (--kill-child): under systemd, its
        // PID 1 is systemd-nspawn, whose own PID namespace (the machine) is nested in it.
        let process = try DetachedProcess.launch(
            "/usr/bin/unshare", ["--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "/bin/sh", dir.appendingPathComponent("boot.sh").path],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], logFile: log)
        return SandboxHost(instanceID: spec.instanceID, node: spec.node, address: spec.address, port: spec.port, directory: dir.path,
                           process: process, bootedInit: spec.initSystem)
    }

    /// Waits until the node's sshd accepts on its address (within 60 s of now under systemd, 15 s
    /// under OpenRC); a node that dies or misses the deadline is stopped and its log's last lines
    /// are the error.
    func awaitSSH() async throws {
        let deadline = ContinuousClock.now + (initSystem == .systemd ? .seconds(60) : .seconds(15))
        while !LoopbackAddress.accepts(address, port: port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                await stop()
                let log = URL(fileURLWithPath: directory).appendingPathComponent(Self.logName).path
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: " | ") ?? ""
                throw SandboxError.hostFailed(node: node, reason: "sshd did not start on \(address):\(port): \(tail)", log: log)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Whether the node is still running.
    public var isRunning: Bool { process.isRunning }

    /// Ends the node (every process in it), like pulling the power: `unshare` ignores SIGTERM,
    /// and its SIGKILL takes the node's PID 1 (and so the whole PID namespace) with it. The
    /// namespace's processes die after `unshare` does, so this returns once the node's sshd no
    /// longer accepts on its address (at most 10 s): a node started there again binds it, and a
    /// client does not reach the dying one.
    public func stop() async {
        let wasRunning = process.isRunning
        await process.stop(grace: .zero)
        if initSystem == .systemd { await Self.removeCgroups(instanceID) }
        guard wasRunning else { return }
        let deadline = ContinuousClock.now + .seconds(10)
        while LoopbackAddress.accepts(address, port: port), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    static func write(_ text: String, to url: URL, mode: mode_t) throws {
        try Data(text.utf8).write(to: url)
        chmod(url.path, mode)
    }

    static func sshdConfig(_ spec: Spec) -> String {
        """
        # sandbox node \(spec.node) (\(spec.instanceID))
        ListenAddress \(spec.address):\(spec.port)
        HostKey /run/node/ssh_host_ed25519_key
        PermitRootLogin prohibit-password
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        Subsystem sftp internal-sftp
        MaxSessions 100
        MaxStartups 100:30:200
        ClientAliveInterval 30
        PidFile none
        LogLevel INFO

        """
    }

    /// The node's init: build its filesystem view, start the cloud-init timeline, become sshd.
    static func bootScript(_ spec: Spec) -> String {
        let delay = max(0, Double(spec.cloudInitDelay.components.seconds) + Double(spec.cloudInitDelay.components.attoseconds) / 1e18)
        let image = spec.image?.path ?? ""
        return """
        #!/bin/sh
        # Sandbox node init (PID 1 of its namespaces until sshd replaces it).
        set -eu
        node='\(spec.directory.path)'
        image='\(image)'
        mount -t tmpfs -o mode=755 tmpfs /run
        mkdir -p /run/node /run/sshd /run/cloud-init
        mount --bind "$node" /run/node
        for d in etc usr var opt home srv; do
          mkdir -p "$node/upper/$d" "$node/work/$d"
          lower="/$d"
          if [ -n "$image" ] && [ -d "$image/$d" ]; then lower="$image/$d:/$d"; fi
          mount -t overlay overlay -o "lowerdir=$lower,upperdir=$node/upper/$d,workdir=$node/work/$d" "/$d"
        done
        mount --bind "$node/root" /root
        mount -t tmpfs -o mode=1777 tmpfs /tmp
        hostname '\(spec.node)'
        echo '\(spec.instanceID)' > /run/node/instance-id
        # The node's service manager, as an EC2 machine has systemd: OpenRC from the node image
        # (services run under supervise-daemon, respawned when they die, logs under /var/log).
        if [ -x /sbin/openrc ]; then
          mkdir -p /run/openrc
          touch /run/openrc/softlevel
          openrc sysinit > /var/log/openrc-boot.log 2>&1 || echo "openrc sysinit failed: see /var/log/openrc-boot.log" >&2
        fi
        started=$(date +%s)
        ds='DataSourceNoCloud [seed=/var/lib/cloud/seed/nocloud]'
        printf '{"v1": {"datasource": "%s", "stage": "init", "init": {"errors": [], "start": %s, "finished": null}}}\\n' "$ds" "$started" > /run/cloud-init/status.json
        (
          sleep \(delay)
          now=$(date +%s)
          printf '{"v1": {"datasource": "%s", "stage": null, "init": {"errors": [], "start": %s, "finished": %s}, "modules-final": {"errors": [], "start": %s, "finished": %s}}}\\n' "$ds" "$started" "$now" "$now" "$now" > /run/cloud-init/status.json.tmp
          printf '{"v1": {"datasource": "%s", "errors": []}}\\n' "$ds" > /run/cloud-init/result.json
          mv /run/cloud-init/status.json.tmp /run/cloud-init/status.json
        ) &
        exec /usr/sbin/sshd -D -e -f /run/node/sshd_config

        """
    }
}
