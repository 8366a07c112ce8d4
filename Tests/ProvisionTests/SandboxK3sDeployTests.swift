@testable import Engine
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import App
@testable import Kube

/// `platform` and `workloads` (the k8s/ tree onto K3s) on sandbox nodes, against the K3s stand-in
/// (Tests/K3sStandIn), whose `kubectl` keeps applied objects as JSON on the control plane and
/// reports rollouts; nothing here is real K3s or a real cluster. One sandbox up serves every check.
@Suite(.serialized) struct SandboxK3sDeployTests {
    @Test func upAppliesThePlatformAndWorkloadsASecondUpAppliesNothingARemovedObjectIsPrunedFailedRolloutsNameTheirPodsAndAKilledRolloutResumes() async throws {
        var sandbox = Sandbox(name: "k3sd-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, rolloutTimeout: "8s")

        // up through workloads: the stand-in holds exactly the rendered set (and the generated Secrets).
        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let steps = try sandbox.store().steps()
        for id in ["platform", "workloads"] {
            #expect(steps[StepID(id)]?.state == .succeeded, "\(id): \(steps[StepID(id)]?.lastError ?? "missing")")
        }
        let nodes = try SandboxNodes(sandbox)
        let expected = try StandIn.rendered(tree)
        #expect(expected.contains("deployment/app/processor") && expected.contains("statefulset/platform/mongodb") && expected.contains("horizontalpodautoscaler/app/producer"))
        #expect(try await StandIn.held(nodes) == expected)
        let objects = steps[StepID("workloads")]?.outputs["objects"]?.items ?? []
        #expect(objects.contains("autoscaling/v2 HorizontalPodAutoscaler app/producer"), "\(objects)")
        let applies = try await StandIn.applyCount(nodes)
        let platformApplies = try await StandIn.appliedLines(nodes).filter { $0.contains("/platform/") || $0 == "namespace//platform" }.count
        #expect(platformApplies > 0)
        #expect(applies == expected.count, "every object applied once")

        // Unchanged manifests: nothing applied, not even by kubectl; a recheck asks the API and is satisfied.
        let again = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(again.code == 0, "\(again.stderr.suffix(2000))")
        #expect(SandboxRuns.applied(again).isEmpty, "\(SandboxRuns.stepOutcomes(again))")
        let recheck = try await K3sSandbox.run(sandbox, ["up", "--recheck", "--json"])
        #expect(recheck.code == 0 && SandboxRuns.applied(recheck).isEmpty, "\(SandboxRuns.stepOutcomes(recheck)) \(recheck.stderr.suffix(2000))")
        #expect(try await StandIn.applyCount(nodes) == applies)

        // The HPA leaves the rendered set: exactly it is deleted, platform is not applied again.
        let kustomization = tree.appendingPathComponent("base/app/kustomization.yaml")
        let original = try String(contentsOf: kustomization, encoding: .utf8)
        try original.replacingOccurrences(of: "  - producer-hpa.yaml\n", with: "").write(to: kustomization, atomically: true, encoding: .utf8)
        let pruned = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(pruned.code == 0, "\(pruned.failure)")
        #expect(SandboxRuns.applied(pruned).contains("workloads"), "\(SandboxRuns.stepOutcomes(pruned))")
        #expect(try await StandIn.appliedLines(nodes).filter { $0.contains("/platform/") || $0 == "namespace//platform" }.count == platformApplies,
                "platform's rendering did not change: kubectl applied none of it again")
        let heldAfter = try await StandIn.held(nodes)
        #expect(heldAfter == expected.subtracting(["horizontalpodautoscaler/app/producer"]), "\(expected.symmetricDifference(heldAfter))")
        let log = try await K3sSandbox.run(sandbox, ["logs", "workloads"]).stdout
        #expect(log.contains("pruned autoscaling/v2 HorizontalPodAutoscaler app/producer"), "\(log.suffix(2000))")
        var outputs = [("up", up.stdout + up.stderr), ("again", again.stdout + again.stderr), ("pruned", pruned.stdout + pruned.stderr), ("logs workloads", log)]

        // Each way a rollout fails: its own message, naming the pod, within the bounded wait (8 s).
        try original.write(to: kustomization, atomically: true, encoding: .utf8)
        let cases: [(fault: String, expect: [String])] = [
            ("imagepull processor", ["deployment app/processor", "pod app/processor-", "ImagePullBackOff", "Back-off pulling image"]),
            ("crashloop processor", ["pod app/processor-", "CrashLoopBackOff", "restarts 4", "its last log lines", "fatal: stand-in crash"]),
            ("pending producer", ["deployment app/producer", "pod app/producer-", "Pending (Unschedulable): 0/4 nodes are available: 4 Insufficient memory"]),
        ]
        for (fault, expect) in cases {
            try await StandIn.fault(fault, nodes)
            let started = ContinuousClock.now
            let failed = try await K3sSandbox.run(sandbox, ["up"])
            let took = ContinuousClock.now - started
            #expect(failed.code == 1, "\(fault): \(failed.stderr.suffix(2000))")
            #expect(took < .seconds(60), "\(fault): \(took)")
            let error = try sandbox.store().steps()[StepID("workloads")]?.lastError ?? ""
            #expect(error.contains("did not finish within 8"), "\(fault): \(error)")
            for text in expect { #expect(error.contains(text), "\(fault): no '\(text)' in \(error)") }
            outputs.append((fault, failed.stdout + failed.stderr))
        }

        // SIGKILL while the rollout waits (a pod held Pending), the fault cleared, then resume: it finishes.
        try await StandIn.fault("pending producer", nodes)
        let before = try await StandIn.applyCount(nodes)
        let process = try sandbox.cli.start(["up", "--json", "--plan", sandbox.planPath], environment: [:])
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning, ContinuousClock.now < deadline, try await StandIn.applyCount(nodes) <= before {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(process.isRunning, "up was still waiting for the rollout")
        kill(process.pid, SIGKILL)
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        outputs.append(("killed up", process.stdout + process.stderr))
        try await StandIn.fault("", nodes)
        #expect(try await K3sSandbox.run(sandbox, ["unlock"]).code == 0)
        let resumed = try await K3sSandbox.run(sandbox, ["resume", "--json"])
        #expect(resumed.code == 0, "\(resumed.failure)")
        #expect(try sandbox.store().steps()[StepID("workloads")]?.state == .succeeded)
        #expect(try await StandIn.held(nodes) == expected, "the HPA is back")
        outputs.append(("resumed", resumed.stdout + resumed.stderr))

        // More partitions make a new topics Job (a Job's template is immutable); one that fails
        // fails platform at once with its reason and last log lines, and once it passes the old Job is pruned.
        let jobs = { try await StandIn.held(nodes).filter { $0.hasPrefix("job/platform/kafka-topics-") } }
        let firstJob = try await jobs()
        #expect(firstJob.count == 1, "\(firstJob)")
        try await StandIn.fault("jobfail kafka-topics", nodes)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, rolloutTimeout: "60s", pipeline: "{partitions: 4}")
        let started = ContinuousClock.now
        let jobFailed = try await K3sSandbox.run(sandbox, ["up"])
        #expect(jobFailed.code == 1 && ContinuousClock.now - started < .seconds(45), "failed at once, not at the 60 s wait: \(jobFailed.stderr.suffix(2000))")
        let jobError = try sandbox.store().steps()[StepID("platform")]?.lastError ?? ""
        for text in ["the rollout in namespace platform failed", "job platform/kafka-topics-", "failed (BackoffLimitExceeded)", "its last log lines", "Timed out waiting for a node assignment"] {
            #expect(jobError.contains(text), "no '\(text)' in \(jobError)")
        }
        outputs.append(("job failed", jobFailed.stdout + jobFailed.stderr))
        try await StandIn.fault("", nodes)
        let repartitioned = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(repartitioned.code == 0, "\(repartitioned.failure)")
        let secondJob = try await jobs()
        #expect(secondJob.count == 1 && secondJob != firstJob, "the new Job alone: \(firstJob) → \(secondJob)")
        outputs.append(("repartitioned", repartitioned.stdout + repartitioned.stderr))

        // The generated MongoDB password: on the node only (0600), in no output, log or file under state/.
        let password = try await nodes.run("cat \(DeploySecrets.mongoPassword)", on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count == 32)
        let mode = try await nodes.run("stat -c %a \(DeploySecrets.mongoPassword) \(DeploySecrets.file(namespace: "app"))", on: nodes.control).stdout
        #expect(mode.split(separator: "\n") == ["600", "600"], "\(mode)")
        let status = try await K3sSandbox.run(sandbox, ["status", "--json"])
        outputs.append(("status --json", status.stdout))
        for id in ["platform", "workloads"] { outputs.append(("logs \(id)", try await K3sSandbox.run(sandbox, ["logs", id]).stdout)) }
        let leaked = try K3sSandbox.leaks(of: password, in: sandbox, outputs: outputs)
        #expect(leaked.isEmpty, "the MongoDB password leaked: \(leaked)")

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
