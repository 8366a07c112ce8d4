@testable import App
@testable import Engine
import Foundation
@testable import Infra
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Nodes that fail under a running flow (rebooted, frozen, dead), through the real binary on the
/// sandbox: real terraform against moto, a real sshd host per instance. A suite of its own beside
/// `SandboxFlowTests`, serialized as it is: one of these sandboxes at a time.
@Suite(.serialized) struct SandboxNodeFaultTests {
    @Test func afterARebootPlainUpRecoversAndDownOfTheRebootedSandboxLeavesNothingTaggedAndNoProcess() async throws {
        let sandbox = Sandbox(name: "reboot", workers: 1)
        defer { sandbox.cleanUp() }
        let first = try await sandbox.run(["up"])
        #expect(first.code == 0, "\(first.stderr)")
        let created = try await sandbox.taggedResources()

        // Only the hosts die, moto stays: the next plain `up` restarts them where they were.
        let hosts = try sandbox.hosts()
        for host in hosts.values { kill(host.process.pid, SIGKILL) }
        try await waitUntil { hosts.values.allSatisfy { !$0.isRunning } }
        let restarted = try await sandbox.run(["up"])
        #expect(restarted.code == 0, "\(restarted.stderr)")
        #expect(try await sandbox.taggedResources() == created, "the same cloud and instances")
        let back = try sandbox.hosts()
        #expect(Set(back.keys) == Set(hosts.keys) && back.values.allSatisfy(\.isRunning))
        // (each on its old address unless another sandbox on this machine took it meanwhile)
        let restartLog = try String(contentsOf: sandbox.stateDirectory.appendingPathComponent("logs/terraform.apply.log"), encoding: .utf8)
        for host in hosts.values { #expect(restartLog.contains("restarted SSH host for \(host.node) (\(host.instanceID))"), "\(host.node)") }

        // A reboot: moto and every host die (exactly the processes this sandbox started), the state stays.
        func reboot() async throws {
            let moto = try #require(SandboxCloud.load(sandbox.stateDirectory)?.process)
            let hosts = try sandbox.hosts().values.map(\.process)
            for process in [moto] + hosts { kill(process.pid, SIGKILL) }
            try await waitUntil { ([moto] + hosts).allSatisfy { !$0.isRunning } }
        }
        try await reboot()
        let up = try await sandbox.run(["up"])
        #expect(up.code == 0, "\(up.stderr)")
        let cloud = try await sandbox.taggedResources()
        #expect(cloud == (try sandbox.recordedResources()), "moto holds what the state records")
        #expect(cloud[.instance].count == 2 && cloud[.instance].isDisjoint(with: created[.instance]), "new instances in the new cloud")
        let rebooted = try sandbox.hosts()
        #expect(Set(rebooted.keys) == cloud[.instance] && rebooted.values.allSatisfy(\.isRunning), "one running host per new instance, the old ones forgotten")
        let run = try #require(try sandbox.store().lastRun()).id
        for node in ["control-plane", "worker-1"] {
            let step = try sandbox.store().steps()[StepID("node.ready/\(node)")]
            #expect(step?.run == run && step?.state == .succeeded, "\(node) was made ready again")
        }

        try await reboot()
        let down = try await sandbox.run(["down"])
        #expect(down.code == 0, "\(down.stderr)")
        let log = try String(contentsOf: sandbox.stateDirectory.appendingPathComponent("logs/terraform.apply.log"), encoding: .utf8)
        #expect(log.contains("verified: nothing tagged provision:plan=reboot is left"))
        #expect(sandbox.processesLeft().isEmpty, "no moto, host or terraform left: \(sandbox.processesLeft())")
        #expect(try sandbox.hosts().isEmpty)
    }

    @Test func frozenNodeFailsNamingItAndResumeCompletesOnceItAnswersAndAChangedHostKeyNeedsTrustHost() async throws {
        let sandbox = Sandbox(name: "faults", workers: 1, nodeReadyTimeout: "3s")
        defer { sandbox.cleanUp() }
        #expect(try await sandbox.run(["up"]).code == 0)
        let worker = try #require(try sandbox.hosts().values.first { $0.node == "worker-1" })

        // A frozen node (SIGSTOP: TCP accepts, SSH never answers): retries, then an error naming it.
        kill(-worker.process.pid, SIGSTOP)
        let frozen = try await sandbox.run(["up", "--recheck"])
        kill(-worker.process.pid, SIGCONT)
        #expect(frozen.code == 1)
        #expect(frozen.stderr.contains("node.ready/worker-1") && frozen.stderr.contains("worker-1 (root@\(worker.address):22) was not ready"), "\(frozen.stderr)")
        let attempts = try sandbox.store().steps()[StepID("node.ready/worker-1")]?.attempts ?? 0
        #expect(attempts == 3, "retried before giving up")
        #expect(try sandbox.store().steps()[StepID("node.ready/control-plane")]?.state == .succeeded)
        let resumed = try await sandbox.run(["resume"])
        #expect(resumed.code == 0, "\(resumed.stderr)")

        // The node comes back with a different host key: a hard error until trusted deliberately.
        let pinned = try #require(try sandbox.store().pinnedHostKey(worker.instanceID))
        await worker.stop()
        try FileManager.default.removeItem(atPath: worker.directory + "/ssh_host_ed25519_key")
        let changed = try await sandbox.run(["up", "--recheck"])
        #expect(changed.code == 1)
        #expect(changed.stderr.contains("CHANGED") && changed.stderr.contains(pinned) && changed.stderr.contains("provision trust-host"), "\(changed.stderr)")
        #expect(try sandbox.store().steps()[StepID("node.ready/worker-1")]?.attempts == 1, "a changed key is not retried")
        #expect(try sandbox.store().pinnedHostKey(worker.instanceID) == pinned, "the pin is never replaced silently")
        let trust = try await sandbox.run(["trust-host", "worker-1"])
        #expect(trust.code == 0, "\(trust.stderr)")
        let accepted = try await sandbox.run(["resume"])
        #expect(accepted.code == 0, "\(accepted.stderr)")
        let repinned = try sandbox.store().pinnedHostKey(worker.instanceID)
        #expect(repinned != nil && repinned != pinned)

        let down = try await sandbox.run(["down"])
        #expect(down.code == 0, "\(down.stderr)")
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func deadNodeIsReportedAsDriftByAuditWithExit6AndTheOtherNodesOk() async throws {
        let sandbox = Sandbox(name: "audit", workers: 2)
        defer { sandbox.cleanUp() }
        let up = try await sandbox.run(["up"])
        #expect(up.code == 0, "\(up.stderr)")
        let worker = try #require(try sandbox.hosts().values.first { $0.node == "worker-1" })
        await worker.stop()

        let text = try await sandbox.run(["status", "--audit"])
        #expect(text.code == 6, "\(text.stderr)")
        let rows = text.stdout.split(separator: "\n").map(String.init)
        #expect(rows.contains { $0.hasPrefix("node.ready/worker-1 ") && $0.contains("DRIFT") && $0.contains("worker-1") }, "\(text.stdout)")
        for node in ["control-plane", "worker-2"] {
            #expect(rows.contains { $0.hasPrefix("node.ready/\(node) ") && $0.contains(" ok") }, "\(node): \(text.stdout)")
        }
        let json = try await sandbox.run(["status", "--audit", "--json"])
        #expect(json.code == 6, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let audit = object?["audit"] as? [String: String]
        #expect(audit?["node.ready/worker-1"]?.hasPrefix("DRIFT") == true, "\(json.stdout)")
        #expect(audit?["node.ready/control-plane"] == "ok" && audit?["node.ready/worker-2"] == "ok", "\(json.stdout)")
        _ = try await sandbox.run(["down"])
    }
}
