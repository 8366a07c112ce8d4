import Engine
import Foundation

extension Workspace {
    /// What `provision up` would do now with the plan on disk, step by step, and why. Takes no lock
    /// and records nothing, so it may run while an `up` holds the lock; a state with no store yet is
    /// planned against an empty one (in a temporary directory), and no store is created. With
    /// `refresh`, the read-only checks `up` would run first run live (their output goes to the step
    /// logs, as with `status --audit`).
    public func plan(refresh: Bool, processes: ProcessSupervisor, parallelism: Int? = nil) async throws -> ChangePlan {
        let secrets = try plan.resolveSecrets()
        var scratch: URL?
        let store: SQLiteRunStore
        if hasStore {
            store = try SQLiteRunStore(directory: stateDirectory)
        } else {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("provision-plan-\(UUID().uuidString)")
            scratch = directory
            store = try SQLiteRunStore(directory: directory)
        }
        defer { if let scratch { try? FileManager.default.removeItem(at: scratch) } }
        let (graph, ssh, effective) = try Self.runGraph(plan, secrets: secrets, store: store, parallelism: parallelism)
        // No run is started: the checks' contexts name none.
        let preview = RunRecord(id: 0, command: .up, planPath: plan.path, planText: planText, startedAt: Date(), finishedAt: nil, status: .running)
        let executor = Executor(
            graph: graph, store: store, run: preview, stateDirectory: stateDirectory, redactor: Redactor(secrets: Array(secrets.values)),
            processes: processes, parallelism: effective)
        do {
            let result = try await executor.plan(refresh: refresh)
            await ssh.closeAll()
            return result
        } catch {
            await ssh.closeAll()
            throw error
        }
    }
}
