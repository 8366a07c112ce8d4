@testable import App
@testable import Engine
import Foundation
@testable import Kube
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `runtime: k3s` through the real binary on sandbox nodes (real sshd and OpenRC per node), against
/// the K3s stand-in in Tests/K3sStandIn given as airgap files: an install script honouring K3s's
/// environment and a `k3s` program whose server and agents talk over the network. Nothing here is
/// real K3s.
@Suite(.serialized) struct SandboxK3sTests {
    static let existingKubeconfig = """
        apiVersion: v1
        clusters:
        - cluster:
            server: https://prod.example.com:6443
          name: prod
        contexts:
        - context:
            cluster: prod
            user: prod-admin
          name: prod
        current-context: prod
        kind: Config
        users:
        - name: prod-admin
          user:
            token: not-ours

        """

    @Test func upJoinsWorkersInParallelThroughKubeconfigASecondUpInstallsNothingANewWorkerJoinsAloneAndDownRemovesOnlyOurContext() async throws {
        var sandbox = Sandbox(name: "k3s-\(UInt16.random(in: 1000...65000))", workers: 3)
        defer { sandbox.cleanUp() }
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 3, merge: true)
        let merged = sandbox.cli.directory.appendingPathComponent("kube/config")
        try FileManager.default.createDirectory(at: merged.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(Self.existingKubeconfig.utf8).write(to: merged)

        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let store = try sandbox.store()
        let run = try #require(try store.lastRun()).id
        let steps = try store.steps()
        let workers = ["worker-1", "worker-2", "worker-3"]
        for id in ["k3s.server", "cluster.ready", "kubeconfig"] + workers.map({ "k3s.join/\($0)" }) {
            #expect(steps[StepID(id)]?.state == .succeeded, "\(id): \(steps[StepID(id)]?.lastError ?? "missing")")
        }
        #expect(steps[StepID("k3s.server")]?.outputs["version"] == .string(K3sSandbox.version))

        // The joins ran at the same time: every pair of their attempts overlaps in the store.
        let intervals = try workers.map { worker -> (Date, Date) in
            let attempt = try #require(try store.attempts(of: StepID("k3s.join/\(worker)"), run: run).last)
            return (attempt.startedAt, try #require(attempt.finishedAt))
        }
        let (lastStart, firstEnd) = (try #require(intervals.map(\.0).max()), try #require(intervals.map(\.1).min()))
        #expect(lastStart < firstEnd, "join intervals overlap: \(intervals)")

        let nodes = try SandboxNodes(sandbox)
        #expect(try await K3sSandbox.installs(nodes) == ["control-plane": 1, "worker-1": 1, "worker-2": 1, "worker-3": 1])

        // kubeconfig: 0600, the server this machine reaches, everything named after the plan.
        let own = sandbox.stateDirectory.appendingPathComponent("kubeconfig")
        let mode = try FileManager.default.attributesOfItem(atPath: own.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let server = "https://\(nodes.address):6443"
        let ownText = try String(contentsOf: own, encoding: .utf8)
        #expect(Kubeconfig.has(ownText, context: sandbox.name, server: server), "\(ownText)")
        #expect(!ownText.contains("name: default") && ownText.contains("current-context: \(sandbox.name)"))
        let mergedText = try String(contentsOf: merged, encoding: .utf8)
        #expect(Kubeconfig.has(mergedText, context: sandbox.name, server: server) && Kubeconfig.has(mergedText, context: "prod", server: "https://prod.example.com:6443"))
        #expect(try Kubeconfig.remove(named: sandbox.name, from: mergedText) == Self.existingKubeconfig, "the other entries are as they were")
        #expect(FileManager.default.contents(atPath: merged.path + ".provision-backup") == Data(Self.existingKubeconfig.utf8))
        let path = try await K3sSandbox.run(sandbox, ["kubeconfig"])
        #expect(path.code == 0 && path.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == own.path, "\(path.stderr)")

        // The generated token never reached a log, event, output or file here.
        let token = try await nodes.run("cat /var/lib/rancher/k3s/server/token", on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("K10") && token.contains("::server:"))
        let status = try await K3sSandbox.run(sandbox, ["status", "--json"])
        let logs = try await K3sSandbox.run(sandbox, ["logs", "k3s.join/worker-1"])
        let outputs = [("up --json", up.stdout), ("up stderr", up.stderr), ("status --json", status.stdout), ("logs", logs.stdout)]
        for secret in [token, String(token.split(separator: ":").last!)] {
            #expect(try K3sSandbox.leaks(of: secret, in: sandbox, outputs: outputs).isEmpty, "the token leaked")
        }

        // Nothing changed: nothing applied, no install script run anywhere.
        let again = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(again.code == 0, "\(again.stderr.suffix(2000))")
        #expect(SandboxRuns.applied(again).isEmpty, "\(SandboxRuns.stepOutcomes(again))")
        #expect(try await K3sSandbox.installs(nodes) == ["control-plane": 1, "worker-1": 1, "worker-2": 1, "worker-3": 1])

        // 3 → 4 workers: only the new worker's join (and the cluster's readiness) runs.
        K3sSandbox.writePlan(sandbox, workers: 4, merge: true)
        let scale = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(scale.code == 0, "\(scale.failure)")
        let applied = SandboxRuns.applied(scale)
        #expect(applied.filter { $0.hasPrefix("k3s.") } == ["k3s.join/worker-4"], "\(applied)")
        #expect(!applied.contains("kubeconfig"))
        let grown = try SandboxNodes(sandbox)
        #expect(try await K3sSandbox.installs(grown) == ["control-plane": 1, "worker-1": 1, "worker-2": 1, "worker-3": 1, "worker-4": 1])
        let cluster = try await grown.run("k3s kubectl get nodes -o json", on: grown.control).stdout
        #expect(try KubeNode.list(Data(cluster.utf8)).filter(\.isReady).count == 5)

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(FileManager.default.contents(atPath: merged.path) == Data(Self.existingKubeconfig.utf8), "down removes only our context")
        #expect(!FileManager.default.fileExists(atPath: own.path))
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func sigkillMidJoinThenResumeInstallsEveryAgentOnceAndFailedJoinsNameTheirCause() async throws {
        var sandbox = Sandbox(name: "k3sf-\(UInt16.random(in: 1000...65000))", workers: 2)
        defer { sandbox.cleanUp() }
        let planted = "planted-join-token-\(UUID().uuidString)"
        let environment = ["K3S_TEST_TOKEN": planted]
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 2, token: true)

        // SIGKILL provision while joins run, then resume: every agent installed exactly once.
        let process = try sandbox.cli.start(["up", "--json", "--plan", sandbox.planPath], environment: environment)
        try await waitUntil(timeout: .seconds(180), every: .milliseconds(100)) {
            let steps = (try? sandbox.store().steps()) ?? [:]
            return steps.contains { $0.key.rawValue.hasPrefix("k3s.join/") && $0.value.state == .running } || !process.isRunning
        }
        try await Task.sleep(for: .milliseconds(1500))
        kill(process.pid, SIGKILL)
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        var outputs = [("killed up", process.stdout + process.stderr)]
        #expect(try await K3sSandbox.run(sandbox, ["unlock"]).code == 0)
        let resume = try await K3sSandbox.run(sandbox, ["resume", "--json"], environment: environment)
        #expect(resume.code == 0, "\(resume.failure)")
        outputs.append(("resume", resume.stdout + resume.stderr))
        let nodes = try SandboxNodes(sandbox)
        #expect(try await K3sSandbox.installs(nodes) == ["control-plane": 1, "worker-1": 1, "worker-2": 1])

        // A new worker whose node password the server rejects: its own message and fix, within the deadline.
        _ = try await nodes.run("mkdir -p /var/lib/rancher/k3s/server/standin && echo 'reject-password worker-3' > /var/lib/rancher/k3s/server/standin/faults",
                                on: nodes.control)
        K3sSandbox.writePlan(sandbox, workers: 3, token: true, installTimeout: "15s")
        let rejected = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(rejected.code == 1)
        #expect(rejected.stderr.contains("k3s.join/worker-3") && rejected.stderr.contains("Node password rejected")
                && rejected.stderr.contains("k3s kubectl delete node worker-3"), "\(rejected.failure)")
        let store = try sandbox.store()
        let last = try #require(try store.lastRun())
        let failed = try #require(try store.attempts(of: StepID("k3s.join/worker-3"), run: last.id).last)
        // The deadline holds: the step ends soon after its 15 s (not a timing bound: a loaded machine
        // has taken tens of seconds more; a join without a deadline would wait for ever).
        #expect(try #require(failed.finishedAt).timeIntervalSince(failed.startedAt) < 120, "the 15 s deadline holds")
        outputs.append(("rejected", rejected.stdout + rejected.stderr))

        // A server that never answers the join: the agent hangs; the join fails within its deadline with the agent's last lines.
        _ = try await nodes.run("echo 'hang worker-3' > /var/lib/rancher/k3s/server/standin/faults", on: nodes.control)
        let started = ContinuousClock.now
        let hung = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(hung.code == 1)
        #expect(ContinuousClock.now - started < .seconds(240), "the hung join ended at its deadline")
        #expect(hung.stderr.contains("did not join within 15") && hung.stderr.contains("never answers its join"), "\(hung.failure)")
        // The whole error (status, the store) carries the agent's last log lines.
        let error = try sandbox.store().steps()[StepID("k3s.join/worker-3")]?.lastError ?? ""
        #expect(error.contains("last lines of /var/log/k3s-agent.log") && error.contains("Waiting to retrieve agent configuration"), "\(error)")
        outputs.append(("hung", hung.stdout + hung.stderr))

        // The fault gone but the plan's token changed: the server refuses it, and the error says so.
        _ = try await nodes.run("rm -f /var/lib/rancher/k3s/server/standin/faults", on: nodes.control)
        let refused = try await K3sSandbox.run(sandbox, ["up"], environment: ["K3S_TEST_TOKEN": "another-token-\(UUID().uuidString)"])
        #expect(refused.code == 1)
        #expect(refused.stderr.contains("k3s.join/worker-3") && refused.stderr.contains("refused the join token")
                && refused.stderr.contains("the secret 'join' (k3s.token)"), "\(refused.failure)")

        // The right token again: the agent (restarted with it, retrying under OpenRC) joins.
        let healed = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(healed.code == 0, "\(healed.failure)")
        outputs.append(("healed", healed.stdout + healed.stderr))

        // worker-3's machine is re-created (terminated in the cloud, so terraform replaces it: a new
        // instance and a fresh disk, hence a new node password): its join deletes the stale node
        // object instead of being rejected, and nothing else is installed again.
        let old = try #require(try await sandbox.liveInstances().first { $0.tags["Node"] == "worker-3" })
        try await sandbox.ec2().terminate([old.id])
        let before = try await K3sSandbox.installs(nodes)
        let replaced = try await K3sSandbox.run(sandbox, ["up", "--recheck"], environment: environment)
        #expect(replaced.code == 0, "\(replaced.failure)")
        let joinLog = try await K3sSandbox.run(sandbox, ["logs", "k3s.join/worker-3"], environment: environment).stdout
        #expect(joinLog.contains("but joined as \(old.id): deleting its stale node object"), "\(joinLog.suffix(2000))")
        let after = try await K3sSandbox.installs(try SandboxNodes(sandbox))
        #expect(after["worker-3"] == 1 && after.filter { $0.key != "worker-3" } == before.filter { $0.key != "worker-3" }, "\(before) → \(after)")
        outputs.append(("replaced", replaced.stdout + replaced.stderr))

        // A node the cluster reports NotReady: the audit names it with the Ready condition's reason and message.
        _ = try await nodes.run("echo 'notready worker-1' > /var/lib/rancher/k3s/server/standin/faults", on: nodes.control)
        let audit = try await K3sSandbox.run(sandbox, ["status", "--audit", "--json"], environment: environment)
        _ = try await nodes.run("rm -f /var/lib/rancher/k3s/server/standin/faults", on: nodes.control)
        #expect(audit.code == 6, "\(audit.stderr.suffix(2000))")
        let findings = (try? JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [String: Any])?["audit"] as? [String: String] ?? [:]
        for id in ["cluster.ready", "k3s.join/worker-1"] {
            #expect(findings[id]?.contains("worker-1") == true && findings[id]?.contains("NotReady (KubeletNotReady: container runtime network not ready") == true,
                    "\(id): \(findings[id] ?? "none")")
        }
        #expect(findings["k3s.join/worker-2"] == "ok", "\(findings)")
        outputs.append(("audit", audit.stdout + audit.stderr))

        // A pin the airgap binary is not: reported before anything is installed.
        K3sSandbox.writePlan(sandbox, workers: 3, version: "v1.33.5+k3s1", token: true)
        let wrong = try await K3sSandbox.run(sandbox, ["up"], environment: environment)
        #expect(wrong.code == 1)
        #expect(wrong.stderr.contains("is K3s v1.33.4+k3s1, but k3s.version pins v1.33.5+k3s1"), "\(wrong.stderr.suffix(2000))")
        outputs.append(("wrong version", wrong.stdout + wrong.stderr))

        let status = try await K3sSandbox.run(sandbox, ["status", "--json"], environment: environment)
        outputs.append(("status --json", status.stdout))
        for id in ["k3s.server", "k3s.join/worker-1", "k3s.join/worker-3"] {
            outputs.append(("logs \(id)", try await K3sSandbox.run(sandbox, ["logs", id], environment: environment).stdout))
        }
        let leaked = try K3sSandbox.leaks(of: planted, in: sandbox, outputs: outputs)
        #expect(leaked.isEmpty, "the planted token leaked: \(leaked)")

        let down = try await K3sSandbox.run(sandbox, ["down"], environment: environment)
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
