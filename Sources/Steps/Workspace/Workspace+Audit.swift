import Engine
import Foundation

extension Workspace {
    /// Runs every step's check live against the plan on disk and reports where the world no
    /// longer matches the store. Read-only: takes no lock and records nothing.
    public func audit(processes: ProcessSupervisor, parallelism: Int? = nil) async throws -> [StepID: AuditFinding] {
        let store = try openStore()
        guard let run = try store.lastRun() else { return [:] }
        let secrets = try plan.resolveSecrets()
        let (graph, ssh, effective) = try Self.runGraph(plan, secrets: secrets, store: store, parallelism: parallelism)
        let executor = Executor(
            graph: graph, store: store, run: run, stateDirectory: stateDirectory,
            redactor: Redactor(secrets: Array(secrets.values)), processes: processes, parallelism: effective)
        let findings = try await executor.audit()
        await ssh.closeAll()
        return findings
    }
}
