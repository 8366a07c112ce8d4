import Engine
import Foundation

extension Workspace {
    /// Runs every step's check live against the plan on disk and reports where the world no
    /// longer matches the store. Read-only: takes no lock and records nothing.
    public func audit(processes: ProcessSupervisor, parallelism: Int? = nil) async throws -> [StepID: AuditFinding] {
        let store = try openStore()
        guard let run = try store.lastRun() else { return [:] }
        let secrets = try plan.resolveSecrets()
        let executor = Executor(
            graph: try plan.graph(secrets: secrets), store: store, run: run, stateDirectory: stateDirectory,
            redactor: Redactor(secrets: Array(secrets.values)), processes: processes, parallelism: parallelism ?? plan.parallelism ?? 10)
        return try await executor.audit()
    }
}
