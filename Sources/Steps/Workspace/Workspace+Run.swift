import Engine
import Foundation
import Infra
import PlanLanguage
import Transport

/// What a command asks of the executor.
public enum RunRequest: Sendable {
    /// Converge to the plan on disk.
    case up
    /// Continue the last run with the plan it started with.
    case resume
    /// Tear down.
    case down
    /// Tear down everything above the machines (`down --keep-infra`).
    case downKeepingInfra

    /// Whether this is `down`, with or without `--keep-infra`.
    public var tearsDown: Bool { self == .down || self == .downKeepingInfra }
}

/// What a finished `up`, `resume` or `down` reports.
public struct RunReport: Sendable {
    public let run: RunRecord
    public let summary: RunSummary
    /// Whether this was `resume` continuing `run` (whose command stays `up` or `down`).
    public let resumed: Bool
}

/// Raised when `resume` finds nothing to continue.
public struct NothingToResume: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

extension Workspace {
    /// The most SSH sessions a run keeps to one node: the control plane is where steps meet (the
    /// joins' reads and writes, every service step placed there), and one session runs one
    /// command at a time. Well under sshd's `MaxStartups` (10).
    static let sessionsPerHost = 4

    /// The graph of one run of `plan` and the SSH pool its steps share: built once per run,
    /// pinning host keys in `store`, working on at most the effective parallelism's hosts at once
    /// (`--parallelism`, else the plan's, else 10), the same limit the executor keeps, and opening
    /// up to `sessionsPerHost` sessions to one node when steps work on it at once.
    public static func runGraph(
        _ plan: Plan, secrets: [String: String], store: any StepStore, parallelism: Int?
    ) throws -> (graph: StepGraph, ssh: SSHPool, parallelism: Int) {
        let effective = max(1, parallelism ?? plan.parallelism ?? 10)
        let ssh = SSHPool(store: store, parallelism: effective, sessionsPerHost: sessionsPerHost)
        return (try plan.graph(secrets: secrets, ssh: ssh), ssh, effective)
    }

    /// The SSH endpoints of the nodes `terraform.apply` last recorded (none before it ran): an `up`
    /// starts its handshakes with them at once, so that they overlap the steps before the first
    /// command on a node (a no-op `up` is then about one round trip per node).
    static func recordedEndpoints(_ steps: [StepID: StepRecord], stateDirectory: URL) -> [SSHEndpoint] {
        guard let outputs = steps[TerraformApplyStep.id]?.outputs, let inventory = try? ClusterInventory(outputs: outputs) else { return [] }
        let key = SSHKeyStep.keyFile(stateDirectory).path
        return inventory.nodes.compactMap { try? $0.endpoint(identityFile: key) }
    }

    /// Runs `request` under the state lock: loads secrets, builds the graph, records the run and
    /// walks it. Cancelling the calling task stops it gracefully.
    /// - Parameters:
    ///   - parallelism: overrides the plan's.
    ///   - recheck: check succeeded steps against the live world too (`up --recheck`).
    ///   - willStart: called with the run and the durations earlier runs took, before any step starts.
    public func execute(
        _ request: RunRequest, parallelism: Int?, recheck: Bool = false, processes: ProcessSupervisor, commandLine: String,
        willStart: @Sendable (RunRecord, StepGraph, [StepID: StepRecord]) -> Void = { _, _, _ in },
        observer: @escaping @Sendable (Event) -> Void
    ) async throws -> RunReport {
        let store = try openStore()
        let holder = LockHolder.current(command: commandLine)
        try store.acquireLock(holder)
        defer { try? store.releaseLock(pid: holder.pid) }

        var plan = self.plan
        var command: RunCommand = switch request {
        case .down: .down
        case .downKeepingInfra: .downKeepingInfra
        case .up, .resume: .up
        }
        var previous: RunRecord?
        if request == .resume {
            guard let last = try store.lastRun() else {
                throw NothingToResume(message: "there is no run to resume in \(stateDirectory.path); start one with 'provision up'")
            }
            guard last.status != .succeeded else {
                throw NothingToResume(message: "the last run (\(last.id), \(last.command.rawValue)) finished successfully; nothing to resume. Run 'provision up' to converge again")
            }
            plan = try PlanLoader.parse(Data(last.planText.utf8), path: last.planPath)
            command = last.command
            previous = last
        }
        let secrets = try plan.resolveSecrets()
        let (graph, ssh, effective) = try Self.runGraph(plan, secrets: secrets, store: store, parallelism: parallelism)
        var run: RunRecord
        if let previous {
            run = previous
            try store.resumeRun(previous.id)
        } else {
            run = try store.beginRun(command: command, planPath: plan.path, planText: planText)
        }
        let recorded = try store.steps()
        if !command.tearsDown { await ssh.warm(Self.recordedEndpoints(recorded, stateDirectory: stateDirectory)) }
        willStart(run, graph, recorded)
        var executor = Executor(
            graph: graph, store: store, run: run, stateDirectory: stateDirectory, redactor: Redactor(secrets: Array(secrets.values)),
            processes: processes, parallelism: effective, observer: observer)
        executor.recheck = recheck
        let summary = command.tearsDown ? try await executor.down() : try await executor.up()
        await ssh.closeAll()
        try store.finishRun(run.id, status: summary.status)
        run.status = summary.status
        return RunReport(run: run, summary: summary, resumed: previous != nil)
    }
}
