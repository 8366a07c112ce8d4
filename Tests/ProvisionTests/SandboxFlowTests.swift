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
}
