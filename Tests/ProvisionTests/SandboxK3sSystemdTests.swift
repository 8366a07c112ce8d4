@testable import App
@testable import Engine
import Foundation
@testable import Infra
import TestSupport
import Testing

/// `runtime: k3s` on sandbox nodes that boot systemd (`sandbox.init: systemd`): the K3s stand-in's
/// install script writes a Type=notify unit and its env file as K3s's does under systemd, the
/// stand-in notifies systemd when it is up and logs to journald, and a join that cannot succeed is
/// diagnosed from `journalctl -u k3s-agent`.
@Suite(.serialized) struct SandboxK3sSystemdTests {
    @Test func agentsJoinUnderSystemdAndAFailedJoinNamesItsCauseFromJournald() async throws {
        var sandbox = Sandbox(name: "k3sd-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let token = "systemd-join-token-\(UUID().uuidString)"
        let environment = ["K3S_TEST_TOKEN": token]
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, token: true, initSystem: .systemd)

        let up = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        #expect(nodes.inventory.nodes.allSatisfy { $0.initSystem == .systemd }, "the inventory records each node's init")
        let worker = try #require(nodes.inventory.node(named: "worker-1"))
        let unit = try await nodes.run("""
            systemctl show k3s-agent -p Type -p TimeoutStartUSec -p ActiveState --no-pager; stat -c %a /etc/systemd/system/k3s-agent.service.env; \
            journalctl -u k3s-agent --no-pager -q -o cat | grep -c 'Successfully registered node worker-1'; test -e /var/log/k3s-agent.log || echo no-file
            """, on: worker).stdout
        #expect(unit == "Type=notify\nTimeoutStartUSec=infinity\nActiveState=active\n600\n1\nno-file\n",
                "a Type=notify unit without a start timeout, its env file 0600, its log in journald only: \(unit)")
        let status = try await K3sSandbox.run(sandbox, ["status"])
        #expect(status.stdout.contains("nodes: control-plane (systemd), worker-1 (systemd)"), "status names the nodes' init: \(status.stdout)")

        // cloud-init itself ran the user data terraform gave the instance (read back from moto).
        let cloudInit = try await nodes.run("""
            cloud-init status --long | head -n 1; cat /etc/hostname; cat /etc/provision/node.env; \
            grep -c 'Writing to /etc/provision/node.env' /var/log/cloud-init.log; grep -c '^hostname: worker-1$' /var/lib/cloud/seed/nocloud/user-data
            """, on: worker).stdout
        #expect(cloudInit == "status: done\nworker-1\nNODE_NAME=worker-1\nNODE_ROLE=agent\n1\n1\n", "\(cloudInit)")

        // worker-1 reboots (its machine stopped, booted again with its disk): a plain up converges,
        // the agent (enabled, started by systemd at boot) joined again.
        let pid1Before = try await nodes.run("cut -d' ' -f22 /proc/1/stat", on: worker).stdout
        let host = try #require(try SandboxFleet.hosts(try sandbox.store()).values.first { $0.node == "worker-1" })
        await host.stop()
        let afterReboot = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(afterReboot.code == 0, "\(afterReboot.failure)")
        let rebooted = try SandboxNodes(sandbox)
        let again = try await rebooted.run("cut -d' ' -f22 /proc/1/stat; systemctl is-active k3s-agent",
                                           on: try #require(rebooted.inventory.node(named: "worker-1"))).stdout
        #expect(again != pid1Before + "active\n" && again.hasSuffix("\nactive\n"),
                "a new PID 1 whose systemd runs the agent again: \(again) (PID 1 started before at \(pid1Before))")

        // A second worker whose node password the server rejects: the cause, read from journald, within the deadline.
        _ = try await nodes.run("mkdir -p /var/lib/rancher/k3s/server/standin && echo 'reject-password worker-2' > /var/lib/rancher/k3s/server/standin/faults",
                                on: nodes.control)
        K3sSandbox.writePlan(sandbox, workers: 2, token: true, installTimeout: "15s", initSystem: .systemd)
        let started = ContinuousClock.now
        let rejected = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(rejected.code == 1)
        #expect(rejected.stderr.contains("k3s.join/worker-2") && rejected.stderr.contains("Node password rejected")
                && rejected.stderr.contains("k3s kubectl delete node worker-2"), "\(rejected.failure)")
        let store = try sandbox.store()
        let last = try #require(try store.lastRun())
        let failed = try #require(try store.attempts(of: StepID("k3s.join/worker-2"), run: last.id).last)
        // The deadline holds: the step ends soon after its 15 s (a bound a loaded machine keeps; a join
        // without a deadline would wait for ever).
        #expect(try #require(failed.finishedAt).timeIntervalSince(failed.startedAt) < 120, "the 15 s deadline holds")
        let error = try store.steps()[StepID("k3s.join/worker-2")]?.lastError ?? ""
        #expect(error.contains("last lines of journalctl -u k3s-agent") && error.contains("Node password rejected"), "\(error)")
        print("systemd K3s: rejected join failed after \(ContinuousClock.now - started)")

        // The fault gone but the plan's token changed: the server refuses it, read from journald again.
        // The failed agent keeps retrying under systemd (Restart=always, as K3s's unit) and would
        // join with the old token once the fault is gone: it is stopped first, so the next join is
        // the new token's.
        let worker2 = try #require(try SandboxNodes(sandbox).inventory.node(named: "worker-2"))
        _ = try await nodes.run("systemctl stop k3s-agent", on: worker2)
        _ = try await nodes.run("rm -f /var/lib/rancher/k3s/server/standin/faults", on: nodes.control)
        let refused = try await K3sSandbox.run(sandbox, ["up"], environment: ["K3S_TEST_TOKEN": "another-token-\(UUID().uuidString)"])
        #expect(refused.code == 1)
        #expect(refused.stderr.contains("k3s.join/worker-2") && refused.stderr.contains("refused the join token"), "\(refused.failure)")

        let down = try await K3sSandbox.run(sandbox, ["down"], environment: environment)
        #expect(down.code == 0, "\(down.failure)")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
