import Engine
import Foundation
import Testing
@testable import Steps

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
}
