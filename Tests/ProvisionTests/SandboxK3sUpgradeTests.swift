@testable import Engine
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import App
@testable import Kube

/// Rolling K3s upgrades on sandbox nodes (1 server + 3 workers, the k8s/ tree deployed) against
/// the K3s stand-in (Tests/K3sStandIn), which places pods on nodes, cordons, drains through
/// PodDisruptionBudgets and writes a timeline of node events. Nothing here is real K3s: nothing
/// runs in the stand-in's pods, so the pipeline's own flow during an upgrade is not shown here.
@Suite struct SandboxK3sUpgradeTests {
    static let standin = StandIn.standin

    /// Runs `provision ARGS --plan <plan>`, SIGKILLed (and recorded as an issue) if it still runs
    /// after `limit`: an upgrade that waits for ever fails the test instead of hanging the test run.
    /// The limit is generous: a full test run's start once made a first `up` of these sandboxes take
    /// over five minutes (terraform alone three).
    static func run(_ sandbox: Sandbox, _ arguments: [String], limit: Duration = .seconds(900)) async throws -> CLI.Result {
        let process = try sandbox.cli.start(arguments + ["--plan", sandbox.planPath])
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.pid, SIGKILL)
                process.wait()
                Issue.record("provision \(arguments.joined(separator: " ")) still ran after \(limit): killed; \(process.stderr.suffix(2000))")
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return CLI.Result(code: process.exitCode, stdout: process.stdout, stderr: process.stderr, signaled: process.signaled)
    }

    /// Copies the k8s/ tree beside `sandbox`'s plan, brings the sandbox up with it deployed, and
    /// returns the tree (later plans point at it) and the nodes.
    static func deploy(_ sandbox: inout Sandbox, workers: Int) async throws -> (tree: URL, nodes: SandboxNodes) {
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: workers, deploy: tree.path)
        let up = try await Self.run(sandbox, ["up"])
        #expect(up.code == 0, "\(up.failure)")
        return (tree, try SandboxNodes(sandbox))
    }

    /// One line of the stand-in's timeline: "<epoch> <event> <node> [<detail>]".
    struct Event: CustomStringConvertible {
        let time: Double
        let event: String
        let node: String
        let detail: String
        var description: String { "\(event) \(node)\(detail.isEmpty ? "" : " " + detail)" }
    }

    static func timeline(_ nodes: SandboxNodes) async throws -> [Event] {
        try await nodes.run("cat \(standin)/timeline 2>/dev/null", on: nodes.control).stdout.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            guard parts.count >= 3, let time = Double(parts[0]) else { return nil }
            return Event(time: time, event: parts[1], node: parts[2], detail: parts.count > 3 ? parts[3] : "")
        }
    }

    /// A copy of the stand-in that reports `version` (the air-gap binary of another release).
    static func binary(_ version: String, in sandbox: Sandbox) throws -> String {
        let text = try String(contentsOf: CLI.repository.appendingPathComponent("Tests/K3sStandIn/k3s"), encoding: .utf8)
            .replacingOccurrences(of: "VERSION = \"\(K3sSandbox.version)\"", with: "VERSION = \"\(version)\"")
        let path = sandbox.cli.write("k3s-\(version)", text)
        chmod(path, 0o755)
        return path
    }

    /// Every node as the cluster reports it.
    static func clusterNodes(_ nodes: SandboxNodes) async throws -> [KubeNode] {
        try KubeNode.list(Data(try await nodes.run("k3s kubectl get nodes -o json", on: nodes.control).stdout.utf8))
    }

    /// What an upgrade's events must show: each node out of service (cordon to uncordon) alone,
    /// its drain and evictions inside that window and before it joined again on `version`, the
    /// server first. Returns the problems found.
    static func rollingProblems(_ events: [Event], version: String, nodes names: [String], server: String) -> [String] {
        var problems: [String] = []
        var out: String?
        var draining: String?
        var windows: [String] = []
        var drained: Set<String> = []
        for event in events {
            switch event.event {
            case "cordon":
                if let out, out != event.node { problems.append("\(event.node) cordoned while \(out) was out of service") }
                out = event.node
                windows.append(event.node)
            case "uncordon":
                if out == event.node { out = nil }
            case "drain-start":
                if let draining { problems.append("\(event.node)'s drain began while \(draining)'s ran") }
                if out != event.node { problems.append("\(event.node) drained outside its cordon") }
                draining = event.node
            case "drain-end", "drain-timeout":
                draining = nil
                drained.insert(event.node)
            case "evict":
                if draining != event.node { problems.append("a pod evicted from \(event.node) outside its drain") }
            case "joined" where event.detail == version:
                if !drained.contains(event.node) { problems.append("\(event.node) restarted on \(version) before it was drained") }
                if out != event.node { problems.append("\(event.node) restarted on \(version) while not cordoned") }
            default:
                break
            }
        }
        if let out { problems.append("\(out) left cordoned") }
        if windows.first != server { problems.append("the server was not first: \(windows)") }
        for name in names where !windows.contains(name) { problems.append("\(name) was never taken out of service") }
        return problems
    }

    @Test func aNewVersionUpgradesOneNodeAtATimeServerFirstEachDrainedBeforeItsRestartAndADowngradeIsRefused() async throws {
        var sandbox = Sandbox(name: "k3sg-\(UInt16.random(in: 1000...65000))", workers: 3)
        defer { sandbox.cleanUp() }
        let (tree, nodes) = try await Self.deploy(&sandbox, workers: 3)
        let names = ["control-plane", "worker-1", "worker-2", "worker-3"]
        let before = try await Self.timeline(nodes).count

        let next = "v1.33.5+k3s1"
        K3sSandbox.writePlan(sandbox, workers: 3, version: next, deploy: tree.path, binary: try Self.binary(next, in: sandbox),
                                  k3sExtra: ["drain_timeout: 60s"])
        let upgrade = try await Self.run(sandbox, ["up", "--json"])
        #expect(upgrade.code == 0, "\(upgrade.failure)")
        let events = Array(try await Self.timeline(nodes).dropFirst(before))
        let problems = Self.rollingProblems(events, version: next, nodes: names, server: "control-plane")
        #expect(problems.isEmpty, "\(problems)\n\(events.map(\.description).joined(separator: "\n"))")
        #expect(events.contains { $0.event == "evict" }, "pods were placed on the nodes and evicted: \(events)")
        let cluster = try await Self.clusterNodes(nodes)
        #expect(Set(cluster.map(\.version)) == [next] && cluster.allSatisfy { !$0.unschedulable && $0.isReady }, "\(cluster)")
        let log = try await K3sSandbox.run(sandbox, ["logs", "k3s.join/worker-2"]).stdout
        for text in ["worker-2: cordoned; draining it", "worker-2: drained", "worker-2: uncordoned"] {
            #expect(log.contains(text), "no '\(text)' in \(log.suffix(2000))")
        }
        // Every evicted pod runs again on a node in service.
        try await Task.sleep(for: .seconds(3))
        for namespace in ["platform", "app"] {
            let text = try await nodes.run("k3s kubectl get pods -n \(namespace) -o json", on: nodes.control).stdout
            let items = (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
            #expect(!items.isEmpty)
            for pod in items {
                let node = (pod["spec"] as? [String: Any])?["nodeName"] as? String ?? ""
                let phase = (pod["status"] as? [String: Any])?["phase"] as? String ?? ""
                #expect(names.contains(node) && phase == "Running", "\(namespace): \(node) \(phase)")
            }
        }

        // Back to the old pin: refused before any node is touched.
        let count = try await Self.timeline(nodes).count
        K3sSandbox.writePlan(sandbox, workers: 3, deploy: tree.path)
        let downgrade = try await Self.run(sandbox, ["up"])
        #expect(downgrade.code == 1)
        let error = try sandbox.store().steps()[StepID("k3s.server")]?.lastError ?? ""
        #expect(error.contains("control-plane runs K3s \(next), newer than \(K3sSandbox.version)") && error.contains("does not support downgrades"), "\(error)")
        #expect(try await Self.timeline(nodes).count == count, "nothing was cordoned or restarted")

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func sigkillAtRandomMomentsOfUpgradesThenResumeFinishesEveryNodeOnTheNewVersionNoneCordonedAndNoTwoDrainsAtOnce() async throws {
        var sandbox = Sandbox(name: "k3sk-\(UInt16.random(in: 1000...65000))", workers: 3)
        defer { sandbox.cleanUp() }
        let (tree, nodes) = try await Self.deploy(&sandbox, workers: 3)
        let seed = ProcessInfo.processInfo.environment["UPGRADE_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...999_999)
        var random = SeededGenerator(seed: seed)
        print("upgrade kill trials seed \(seed) (replay: UPGRADE_SEED=\(seed) swift test --filter sigkillAtRandomMomentsOfUpgrades)")
        var report: [String] = []
        // Each trial kills `up` once the upgrade's k-th node event (cordon, drain, eviction, restart,
        // uncordon: about 25 in all) is in the stand-in's timeline, plus up to a second: every
        // phase of every node gets hit. Trials go on until ten kills landed during an upgrade.
        var kills = 0
        var trial = 0
        while kills < 10 && trial < 16 {
            trial += 1
            let version = "v1.33.\(5 + trial)+k3s1"
            K3sSandbox.writePlan(sandbox, workers: 3, version: version, deploy: tree.path, binary: try Self.binary(version, in: sandbox),
                                      k3sExtra: ["drain_timeout: 60s"])
            let before = try await Self.timeline(nodes).count
            let running = try sandbox.cli.start(["up", "--plan", sandbox.planPath])
            let event = Int.random(in: 1...22, using: &random)
            let extra = Duration.milliseconds(Int.random(in: 0...1000, using: &random))
            let started = ContinuousClock.now
            while running.isRunning, try await Self.timeline(nodes).count < before + event { try await Task.sleep(for: .milliseconds(100)) }
            try await Task.sleep(for: extra)
            let wait = ContinuousClock.now - started
            let killed = running.isRunning
            if killed { kill(running.pid, SIGKILL); kills += 1 }
            while running.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            // Killed: its lock is stale (unlock clears it) and resume finishes the run; not killed
            // (it ended first): it must have succeeded.
            if killed { #expect(try await Self.run(sandbox, ["unlock"]).code == 0) }
            let finished = killed ? try await Self.run(sandbox, ["resume"])
                : CLI.Result(code: running.exitCode, stdout: running.stdout, stderr: running.stderr, signaled: running.signaled)
            #expect(finished.code == 0, "trial \(trial): \(finished.stderr.suffix(2000))")
            let events = Array(try await Self.timeline(nodes).dropFirst(before))
            let drains = events.filter { $0.event.hasPrefix("drain") }
            var overlap: [String] = []
            var open: String?
            for event in drains {
                if event.event == "drain-start" {
                    if let open { overlap.append("\(event.node) began while \(open) drained") }
                    open = event.node
                } else {
                    open = nil
                }
            }
            #expect(overlap.isEmpty, "trial \(trial): \(overlap)")
            let cluster = try await Self.clusterNodes(nodes)
            #expect(Set(cluster.map(\.version)) == [version], "trial \(trial): \(cluster.map { "\($0.name) \($0.version)" })")
            #expect(cluster.allSatisfy { !$0.unschedulable }, "trial \(trial): cordoned: \(cluster.filter(\.unschedulable).map(\.name))")
            let markers = try await nodes.run("ls \(NodeUpgrade.markers) 2>/dev/null", on: nodes.control).stdout
            #expect(markers.isEmpty, "trial \(trial): markers left: \(markers)")
            report.append("\(trial): \(killed ? "killed after event \(event) + \(extra) (\(wait)), resume exit \(finished.code)" : "up ended before event \(event) + \(extra), exit \(finished.code)")")
        }
        print("upgrade kill trials seed \(seed): " + report.joined(separator: "; "))
        #expect(kills == 10, "ten kills landed during an upgrade in \(trial) trials")

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }

    @Test func aBudgetThatBlocksTheDrainFailsTheNodesStepWithinItsDeadlineNamingThePodAndTheBudgetAndUncordonsIt() async throws {
        var sandbox = Sandbox(name: "k3sb-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let (tree, nodes) = try await Self.deploy(&sandbox, workers: 1)

        // A budget no eviction of the one processor pod can satisfy.
        let budget = #"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"processor-strict","namespace":"app"},"#
            + #""spec":{"minAvailable":1,"selector":{"matchLabels":{"app.kubernetes.io/name":"processor"}}}}"#
        let applied = try await nodes.run("echo '\(budget)' > /tmp/strict.json && k3s kubectl apply --server-side --field-manager=test -f /tmp/strict.json",
                                          on: nodes.control)
        #expect(applied.exitStatus == 0, "\(applied.stderr)")
        let next = "v1.33.5+k3s1"
        K3sSandbox.writePlan(sandbox, workers: 1, version: next, deploy: tree.path, binary: try Self.binary(next, in: sandbox),
                                  k3sExtra: ["drain_timeout: 6s"])
        let started = ContinuousClock.now
        let blocked = try await Self.run(sandbox, ["up"])
        let took = ContinuousClock.now - started
        #expect(blocked.code == 1, "\(blocked.stderr.suffix(2000))")
        #expect(took < .seconds(90), "\(took)")
        let steps = try sandbox.store().steps()
        let error = [StepID("k3s.server"), StepID("k3s.join/worker-1")].compactMap { steps[$0]?.lastError }.first { $0.contains("drain") } ?? ""
        for text in ["did not finish within 6.0s (k3s.drain_timeout)", "pod app/processor-", "protected by PodDisruptionBudget app/processor-strict (",
                     "minAvailable 1; 1 of 1 pods healthy, 0 disruptions allowed", "was uncordoned and still runs K3s \(K3sSandbox.version)",
                     "then run 'provision up'"] {
            #expect(error.contains(text), "no '\(text)' in \(error)")
        }
        #expect(try await Self.clusterNodes(nodes).allSatisfy { !$0.unschedulable }, "the blocked node was put back in service")

        // The budget relaxed: the upgrade goes through.
        _ = try await nodes.run("k3s kubectl delete poddisruptionbudget processor-strict -n app", on: nodes.control)
        let healed = try await Self.run(sandbox, ["up"])
        #expect(healed.code == 0, "\(healed.stderr.suffix(2000))")
        #expect(Set(try await Self.clusterNodes(nodes).map(\.version)) == [next])

        let down = try await K3sSandbox.run(sandbox, ["down"])
        #expect(down.code == 0, "\(down.stderr.suffix(2000))")
        #expect(sandbox.processesLeft().isEmpty)
    }
}
