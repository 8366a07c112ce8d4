@testable import App
import Engine
import Foundation
@testable import NodeRuntime
import Testing
@testable import Transport

/// Sandbox nodes that boot systemd (`sandbox.init: systemd`): real systemd-nspawn machines from
/// the systemd node image, running cloud-init's own units on their NoCloud seed.
@Suite(.serialized) struct SystemdNodeTests {
    static let image = repositoryRoot.appendingPathComponent(".tools/node-image-systemd")

    /// User data shaped like terraform's template for a container node.
    static func userData(_ node: String) -> String? {
        """
        #cloud-config
        hostname: \(node)
        preserve_hostname: false
        write_files:
          - path: /etc/provision/node.env
            permissions: "0644"
            content: |
              NODE_NAME=\(node)
              NODE_ROLE=agent
        runcmd:
          - [sh, -c, "echo ran > /var/lib/provision-runcmd"]

        """
    }

    @Test func aNodeBootsSystemdAsItsPID1AndCloudInitRunsItsUserData() async throws {
        try await withSandboxNodes(image: Self.image, initSystem: .systemd, userData: Self.userData) { nodes in
            let started = ContinuousClock.now
            let host = try await nodes.start(1)[0]
            let sshd = ContinuousClock.now - started
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let pid1 = try await pool.run("cat /proc/1/comm; readlink /proc/1/exe", on: endpoint).stdout
            #expect(pid1.hasPrefix("systemd\n"), "systemd is the node's PID 1: \(pid1)")
            let status = try await pool.run("cloud-init status --wait --long", on: endpoint)
            print("systemd node: sshd answered after \(sshd), cloud-init done after \(ContinuousClock.now - started)")
            #expect(status.succeeded && status.stdout.contains("status: done"), "cloud-init ran to the end: \(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("NoCloud"), "from the NoCloud seed: \(status.stdout)")
            let files = try await pool.run("cat /etc/hostname; hostname; cat /etc/provision/node.env; cat /var/lib/provision-runcmd", on: endpoint).stdout
            #expect(files == "node-1\nnode-1\nNODE_NAME=node-1\nNODE_ROLE=agent\nran\n", "what the user data asks for: \(files)")
            let log = try await pool.run("grep -E 'Writing to /etc/provision/node.env|set_hostname|Running module scripts_user' /var/log/cloud-init.log", on: endpoint).stdout
            #expect(log.contains("Writing to /etc/provision/node.env"), "cloud-init itself wrote the file: \(log)")
            let running = try await pool.run("systemctl is-system-running --wait; systemctl --failed --no-legend --plain", on: endpoint).stdout
            #expect(running.hasPrefix("running"), "no unit failed at boot: \(running)")
            let masked = try await pool.run("systemctl is-active postgresql prometheus ssh", on: endpoint).stdout
            #expect(masked == "inactive\ninactive\nactive\n", "this machine's own services stay off the node: \(masked)")
            #expect(!FileManager.default.fileExists(atPath: "/etc/provision/node.env") || (try? String(contentsOfFile: "/etc/provision/node.env", encoding: .utf8))?.contains("node-1") != true,
                    "the node's files stay on the node")
            await pool.closeAll()
        }
    }

    @Test func aRebootedNodeKeepsItsDiskHostKeyAndCloudInitResult() async throws {
        try await withSandboxNodes(image: Self.image, initSystem: .systemd, userData: Self.userData) { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let first = try await pool.run("cloud-init status --wait >/dev/null; echo kept > /var/lib/reboot-marker; cat /proc/sys/kernel/random/boot_id; journalctl --list-boots --no-pager | wc -l", on: endpoint)
            #expect(first.succeeded, "\(first.stderr)")
            await pool.closeAll()
            let again = try await nodes.reboot(host)
            #expect(again.address == host.address)
            let pool2 = SSHPool(store: nodes.store)
            let after = try await pool2.run("cloud-init status --wait --long; cat /var/lib/reboot-marker; cat /etc/hostname", on: endpoint)
            #expect(after.succeeded, "the pinned host key still matches and cloud-init is done: \(after.stdout)\(after.stderr)")
            #expect(after.stdout.contains("status: done") && after.stdout.contains("kept\nnode-1\n"), "the disk survived the reboot: \(after.stdout)")
            let pid1 = try await pool2.run("ps -o lstart= -p 1", on: endpoint).stdout
            #expect(!pid1.isEmpty)
            await pool2.closeAll()
        }
    }

    @Test func aServiceIsASystemdUnitRestartedAfterSIGKILLWithItsOutputInJournald() async throws {
        try await withSandboxNodes(image: Self.image, initSystem: .systemd, userData: Self.userData) { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let installer = ServiceInstaller(pool: pool, endpoint: endpoint, initSystem: .systemd)
            let unit = ServiceUnit(name: "pipeline-echo", description: "test unit", command: "/bin/sh",
                                   arguments: ["-c", "echo \"started as $GREETING\"; exec sleep 4242"], environment: ["GREETING": "hello"])
            let placed = PlacedService(unit: unit, node: RuntimeNode(name: host.node, address: host.address, isControlPlane: true), health: .running)
            #expect(try await installer.install(placed, timeout: .seconds(20)) { _ in })
            let files = try await pool.run("stat -c %a /etc/provision/env/pipeline-echo.env; systemctl is-enabled pipeline-echo; test -e /etc/init.d/pipeline-echo || echo no-script",
                                           on: endpoint).stdout
            #expect(files == "600\nenabled\nno-script\n", "\(files)")
            let first = try #require(try await installer.pid(of: placed))
            #expect(try await installer.install(placed, timeout: .seconds(20)) { _ in } == false, "nothing changed: nothing restarted")
            #expect(try await installer.pid(of: placed) == first)

            _ = try await pool.run("kill -9 \(first)", on: endpoint)
            var second: Int?
            try await eventually(timeout: .seconds(15)) {
                second = try await installer.pid(of: placed)
                return second != nil && second != first
            }
            let journal = try await pool.run("journalctl -u pipeline-echo --no-pager -q -o cat", on: endpoint).stdout
            #expect(journal.components(separatedBy: "started as hello").count - 1 >= 2, "each start in journald with its environment: \(journal)")

            try await installer.remove(placed)
            let gone = try await pool.run("systemctl is-active pipeline-echo; test -e /etc/systemd/system/pipeline-echo.service || echo removed", on: endpoint).stdout
            #expect(gone.hasSuffix("removed\n") && !gone.hasPrefix("active"), "\(gone)")
            await pool.closeAll()
        }
    }
}
