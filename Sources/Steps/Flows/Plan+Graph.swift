import Engine
import PlanLanguage
import Transport

extension Plan {
    /// The step graph this plan describes (see `Flow`).
    /// - Parameters:
    ///   - secrets: resolved secret values by name (see `resolveSecrets`).
    ///   - ssh: the run's SSH pool (`Workspace.runGraph` builds it); nil for a graph that is only
    ///     shown, whose node steps then fail if run.
    public func graph(secrets: [String: String], ssh: SSHPool? = nil) throws -> StepGraph {
        try Flow.graph(self, secrets: secrets, ssh: ssh)
    }
}
