@testable import App
@testable import Engine
import Foundation
import TestSupport
import Testing

/// `runtime: processes` on sandbox nodes that boot systemd (`sandbox.init: systemd`): every service
/// a systemd unit (Restart=on-failure, journald, its environment file 0600), on machines whose
/// cloud-init ran the instance's real user data.
@Suite(.serialized) struct SandboxSystemdPipelineTests {
    @Test func upVerifiesOnSystemdNodesSystemdRestartsAKilledUnitAStoppedOneIsRestartedAloneARebootConvergesAndAPoweredOffNodeIsAudited() async throws {
        let sandbox = Sandbox(name: "pipsd-\(UInt16.random(in: 1000...65000))", workers: 1, pipeline: SandboxRuns.pipeline(rate: 30),
                              initSystem: .systemd)
        defer { sandbox.cleanUp() }
        let started = ContinuousClock.now
        let up = try await sandbox.run(["up"])
        #expect(up.code == 0, "\(up.failure)")
        print("systemd pipeline: up to a verified pipeline in \(ContinuousClock.now - started)")
        let status = try await sandbox.run(["status"])
        #expect(status.stdout.contains("nodes: control-plane (systemd), worker-1 (systemd)"), "\(status.stdout)")
        let nodes = try SandboxNodes(sandbox)

        // Each machine's boot began while terraform still waited for its instance, as an EC2 instance
        // boots (on a loaded machine its launch may wait for the sandbox lock, and its sshd may
        // answer, after the apply's end; the provider's first look at an instance is 10 s after
        // RunInstances, the early boot's every 0.5 s).
        let applyLog = try await sandbox.run(["logs", "terraform.apply"]).stdout.split(separator: "\n").map(String.init)
        let applied = try #require(applyLog.firstIndex { $0.hasPrefix("Apply complete!") }, "\(applyLog.suffix(30))")
        for node in ["control-plane", "worker-1"] {
            let created = try #require(applyLog.firstIndex { $0.contains("aws_instance.node[\"\(node)\"]: create started") }, "\(applyLog.suffix(30))")
            let booting = try #require(applyLog.firstIndex { $0.hasSuffix("of \(node) exists: booting its machine while terraform waits for it") },
                                       "\(applyLog.suffix(30))")
            #expect(created < booting && booting < applied, "\(node)'s boot began between its RunInstances and the apply's end: \(applyLog.suffix(30))")
            #expect(applyLog.contains { $0.hasPrefix("launched the machine of \(node) ") }, "\(applyLog.suffix(30))")
        }
        // node.ready names the node and what it found, in words (not a runner's debug description).
        let ready = try await sandbox.run(["logs", "node.ready/worker-1"]).stdout
        #expect(ready.contains("worker-1: SSH answers, cloud-init done, init systemd"), "\(ready)")

        // cloud-init itself wrote what terraform's template asks for.
        let cloudInit = try await nodes.run("""
            cloud-init status --long | head -n 1; cat /etc/hostname; cat /etc/provision/node.env; \
            grep -c 'Writing to /etc/provision/node.env' /var/log/cloud-init.log
            """, on: nodes.control).stdout
        #expect(cloudInit == "status: done\ncontrol-plane\nNODE_NAME=control-plane\nNODE_ROLE=server\n1\n", "\(cloudInit)")

        // The processor is a systemd unit with its environment in a 0600 file and its output in journald.
        let unit = try await nodes.run("""
            systemctl show pipeline-processor -p Restart -p ActiveState --no-pager; stat -c %a /etc/provision/env/pipeline-processor.env; \
            journalctl -u pipeline-processor --no-pager -q | wc -l
            """, on: nodes.control).stdout.split(separator: "\n").map(String.init)
        #expect(unit.count == 4 && unit[0] == "Restart=on-failure" && unit[1] == "ActiveState=active" && unit[2] == "600" && (Int(unit[3]) ?? 0) > 0,
                "\(unit)")
        let logs = try await sandbox.run(["logs", "service.processor", "--tail", "5"])
        #expect(logs.code == 0 && logs.stdout.contains("journalctl -u pipeline-processor on control-plane"), "\(logs.stdout)\(logs.stderr)")

        // SIGKILL of its main process: systemd restarts it, and verify passes without `up`.
        let mainPID = "systemctl show -p MainPID --value pipeline-processor"
        let before = try await nodes.run(mainPID, on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await nodes.run("kill -9 \(before)", on: nodes.control)
        var after = before
        try await waitUntil(timeout: .seconds(30), every: .milliseconds(500)) {
            after = try await nodes.run(mainPID, on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            return after != before && after != "0" && !after.isEmpty
        }
        #expect(after != before, "systemd restarted the processor")
        // The restarted consumer rejoins its group (Tansu holds a join for half the session timeout,
        // and the killed member's session must lapse first): verify, without `up`, within a minute.
        let restarted = ContinuousClock.now
        var verify = try await sandbox.run(["verify"])
        while verify.code != 0 && ContinuousClock.now - restarted < .seconds(60) {
            try await Task.sleep(for: .seconds(5))
            verify = try await sandbox.run(["verify"])
        }
        print("systemd pipeline: verify passed \(ContinuousClock.now - restarted) after the processor's restart")
        #expect(verify.code == 0, "\(verify.stdout.suffix(2000))\(verify.stderr.suffix(2000))")

        // Stopped with systemctl: the audit names it, and a plain `up` restarts it alone.
        _ = try await nodes.run("systemctl stop pipeline-processor", on: nodes.control)
        let audit = try await sandbox.run(["status", "--audit"])
        #expect(audit.code == 6, "\(audit.stdout)\(audit.stderr)")
        let drifted = audit.stdout.split(separator: "\n").filter { $0.contains("DRIFT") }.map { String($0.split(separator: " ")[0]) }
        #expect(drifted.contains("service.processor") && drifted.allSatisfy { $0 == "service.processor" || $0 == "verify" }, "\(audit.stdout)")
        let repaired = try await sandbox.run(["up", "--json"])
        if repaired.code != 0 && SandboxRuns.stepOutcomes(repaired)["verify"] == "failed" {
            // Only the processor was restarted and only verify failed (one of its windows missed
            // under a full run's load): a second up must verify, applying nothing else.
            #expect(SandboxRuns.applied(repaired) == ["service.processor"], "\(SandboxRuns.stepOutcomes(repaired))")
            print("after the processor's restart only verify failed; up again")
            let again = try await sandbox.run(["up", "--json"])
            #expect(again.code == 0 && SandboxRuns.applied(again) == ["verify"], "\(SandboxRuns.stepOutcomes(again)) \(again.stderr.suffix(2000))")
        } else {
            #expect(repaired.code == 0, "\(repaired.stderr.suffix(2000))")
            #expect(SandboxRuns.applied(repaired) == ["service.processor", "verify"], "\(SandboxRuns.stepOutcomes(repaired))")
        }

        // worker-1 reboots (machine stopped, booted again with its disk): systemd starts its enabled
        // producer at boot, and a plain up converges to a verified pipeline.
        let worker = try #require(try sandbox.hosts().values.first { $0.node == "worker-1" })
        await worker.stop()
        var rebooted = try await sandbox.run(["up"])
        if rebooted.code != 0 && rebooted.stderr.contains("✗ verify") && !rebooted.stderr.contains("✗ service.") {
            // Everything else converged; right after the boot, under a full test run's load, one
            // of verify's 5 s windows can miss (its two attempts 10 s apart): a second up must pass.
            print("after the reboot only verify failed; up again: \(rebooted.stderr.suffix(1500))")
            rebooted = try await sandbox.run(["up"])
        }
        #expect(rebooted.code == 0, "\(rebooted.failure)")
        // Re-read: the node keeps its address unless another sandbox took it while it was down.
        let afterReboot = try SandboxNodes(sandbox)
        let workerNode = try #require(afterReboot.inventory.node(named: "worker-1"))
        let producer = try await afterReboot.run("systemctl is-active pipeline-producer; systemctl is-enabled pipeline-producer", on: workerNode).stdout
        await afterReboot.pool.closeAll()
        #expect(producer == "active\nenabled\n", "\(producer)")

        // Powered off for good: the audit names it; down still removes everything.
        let gone = try #require(try sandbox.hosts().values.first { $0.node == "worker-1" })
        await gone.stop()
        let offAudit = try await sandbox.run(["status", "--audit"])
        #expect(offAudit.code == 6 && offAudit.stdout.contains("sandbox host is not running"), "\(offAudit.stdout)\(offAudit.stderr)")
        await nodes.pool.closeAll()
        let down = try await sandbox.run(["down"])
        #expect(down.code == 0, "\(down.failure)")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
