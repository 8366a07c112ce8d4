@testable import App
@testable import Engine
import Foundation
@testable import Infra
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The sandbox target end to end through the real binary: real terraform against moto, a real
/// sshd host per instance, cloud-init status over SSH. Stand-ins: none (K3s comes later).
@Suite(.serialized) struct SandboxFlowTests {
    @Test func upReachesNodeReadyThroughTheControlPlaneScalesByOneNodeAndDownLeavesNothing() async throws {
        let sandbox = Sandbox(name: "flow", workers: 2, viaBastion: true)
        defer { sandbox.cleanUp() }

        let up = try await sandbox.run(["up"])
        #expect(up.code == 0, "\(up.stderr)")
        let first = try #require(try sandbox.store().lastRun()).id
        var steps = try sandbox.store().steps()
        let nodes = ["control-plane", "worker-1", "worker-2"]
        for node in nodes {
            let record = try #require(steps[StepID("node.ready/\(node)")])
            #expect(record.state == .succeeded && record.outputs["cloud_init"] == .string("done"))
        }
        var instances = try await sandbox.liveInstances()
        #expect(instances.count == 3)
        #expect(Set(instances.compactMap { $0.tags["Node"] }) == Set(nodes))
        let hostsBefore = try sandbox.hosts()
        #expect(hostsBefore.count == 3 && Set(hostsBefore.values.map(\.address)).count == 3)
        #expect(Set(hostsBefore.keys) == Set(instances.map(\.id)), "one SSH host per instance, recorded by instance id")
        #expect(hostsBefore.values.allSatisfy { $0.isRunning })
        // Workers were reached through the control plane (ProxyJump): it saw their tunnels' logins.
        let terraform = try #require(steps[StepID("terraform.apply")])
        guard case .map(let ssh)? = terraform.outputs["ssh"], case .map(let worker)? = ssh["worker-1"] else { throw StepFailure("no ssh output") }
        #expect(worker["via"] != nil)
        let controlPlane = try #require(hostsBefore.values.first { $0.node == "control-plane" })
        let logins = try String(contentsOfFile: controlPlane.directory + "/node.log", encoding: .utf8).components(separatedBy: "Accepted publickey").count - 1
        #expect(logins >= 3, "its own session and one tunnel per worker")

        // 2 → 3 workers: one more instance, one more host, and only the new node's steps run.
        sandbox.writePlan(workers: 3, viaBastion: true)
        let scale = try await sandbox.run(["up"])
        #expect(scale.code == 0, "\(scale.stderr)")
        let second = try #require(try sandbox.store().lastRun()).id
        steps = try sandbox.store().steps()
        #expect(steps[StepID("node.ready/worker-3")]?.run == second && steps[StepID("node.ready/worker-3")]?.state == .succeeded)
        for node in nodes { #expect(steps[StepID("node.ready/\(node)")]?.run == first, "\(node) must not run again") }
        #expect(steps[StepID("ssh.key")]?.run == first && steps[StepID("sandbox.cloud")]?.run == first)
        instances = try await sandbox.liveInstances()
        #expect(instances.count == 4)
        let hostsAfter = try sandbox.hosts()
        #expect(hostsAfter.count == 4)
        for (id, host) in hostsBefore { #expect(hostsAfter[id]?.process == host.process, "existing hosts keep running untouched") }

        let down = try await sandbox.run(["down"])
        #expect(down.code == 0, "\(down.stderr)")
        let log = try String(contentsOf: sandbox.stateDirectory.appendingPathComponent("logs/terraform.apply.log"), encoding: .utf8)
        #expect(log.contains("verified: nothing tagged provision:plan=flow is left"))
        #expect(hostsAfter.values.allSatisfy { host in !host.isRunning })
        #expect(sandbox.processesLeft().isEmpty, "no host, moto or terraform process is left")
        #expect(try sandbox.hosts().isEmpty)
    }

    /// What the modules create for a plan with two workers, by kind.
    static let plannedCounts: [CloudResourceKind: Int] = [
        .instance: 3, .keyPair: 1, .securityGroup: 1, .routeTableAssociation: 1, .routeTable: 1, .internetGateway: 1, .subnet: 1, .vpc: 1,
    ]

    @Test func sigkillDuringTerraformApplyThenResumeLeavesInMotoExactlyWhatTheStateRecordsOfEveryKindAndDownLeavesNothingTagged() async throws {
        // When to kill: as soon as moto holds the first resource of a kind (terraform persists its
        // state only every few seconds, so what it just created is not recorded yet), and whether
        // terraform dies too (a crash of the whole session leaks what it created; a kill of
        // provision alone orphans terraform, which the resume interrupts so it saves its state).
        let trials: [(kind: CloudResourceKind, killTerraform: Bool)] = [(.vpc, true), (.securityGroup, false), (.instance, true)]
        var leakedKinds: Set<CloudResourceKind> = []
        for (index, trial) in trials.enumerated() {
            let sandbox = Sandbox(name: "kill\(index)", workers: 2)
            defer { sandbox.cleanUp() }
            let process = try sandbox.cli.start(["up", "--plan", sandbox.planPath])
            let deadline = ContinuousClock.now + .seconds(180)
            var reached = false
            while !reached && process.isRunning && ContinuousClock.now < deadline {
                reached = (try? await sandbox.taggedResources())?[trial.kind].isEmpty == false
                if !reached { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(reached, "trial \(index): moto never held a \(trial.kind.rawValue) for the plan")
            let terraformPid = (try? String(contentsOf: sandbox.stateDirectory.appendingPathComponent("terraform.pid"), encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            // The provider process that served the apply (the sandbox's one per step) outlives the kill.
            let providerServer = try? JSONDecoder().decode(DetachedProcess.self, from: Data(contentsOf: sandbox.stateDirectory.appendingPathComponent("terraform-provider.json")))
            kill(process.pid, SIGKILL)
            if trial.killTerraform, let terraformPid { kill(terraformPid, SIGKILL) }
            while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            if trial.killTerraform {
                let leaked = try await sandbox.taggedResources().subtracting(try sandbox.recordedResources())
                leakedKinds.formUnion(leaked.ids.keys)
                print("trial \(index) (killed once moto held its first \(trial.kind.rawValue)): untracked in moto: \(leaked)")
            }

            #expect(try await sandbox.run(["unlock"]).code == 0)
            let resume = try await sandbox.run(["resume"])
            #expect(resume.code == 0, "trial \(index): \(resume.stderr)")
            let orphan = try #require(providerServer, "trial \(index): no provider server was recorded while terraform applied")
            #expect(!orphan.isRunning, "trial \(index): the killed run's provider server (pid \(orphan.pid)) still runs after the resume")
            let held = try await sandbox.taggedResources()
            let recorded = try sandbox.recordedResources()
            #expect(held == recorded, "trial \(index): moto holds \(held); the state records \(recorded)")
            #expect(held.counts == Self.plannedCounts, "trial \(index): \(held)")
            #expect(Set(try sandbox.hosts().keys) == held[.instance], "trial \(index): hosts follow the instances")

            let down = try await sandbox.run(["down"])
            let log = (try? String(contentsOf: sandbox.stateDirectory.appendingPathComponent("logs/terraform.apply.log"), encoding: .utf8)) ?? ""
            #expect(down.code == 0, "trial \(index): \(down.stderr)\nlast lines of the terraform.apply log:\n\(log.split(separator: "\n").suffix(30).joined(separator: "\n"))")
            #expect(log.contains("verified: nothing tagged provision:plan=kill\(index) is left"), "trial \(index)")
            #expect(sandbox.processesLeft().isEmpty)
        }
        // A crash of the whole session mid-create leaks what terraform had not recorded yet; the
        // resume found it and removed it (else the counts above would be off).
        #expect(leakedKinds.isSuperset(of: [.vpc, .instance]), "leaked kinds: \(leakedKinds.map(\.rawValue))")
    }

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
