import Engine
import Foundation

extension Plan {
    /// The step graph this plan describes.
    /// - Parameters:
    ///   - secrets: resolved secret values by name (see `resolveSecrets`).
    ///   - ssh: the run's SSH pool (`Workspace.sshPool`); nil for a graph that is only shown or
    ///     validated, whose node steps then fail if run.
    public func graph(secrets: [String: String], ssh: SSHPool? = nil) throws -> StepGraph {
        let planDirectory = URL(fileURLWithPath: path).deletingLastPathComponent()
        let nodes: [StepGraph.Node] = steps.map { spec in
            let template = ExecStep(spec: spec, planDirectory: planDirectory, secrets: secrets)
            guard let forEach = spec.forEach else { return .step(template) }
            return .fanOut(FanOut(id: StepID(spec.id), source: StepID(forEach.step), output: forEach.output,
                                  dependencies: spec.needs.map { StepID($0) }) { item in template.forItem(item) })
        }
        return try StepGraph(BuiltInSteps.nodes(self, ssh: ssh) + nodes)
    }

    /// Reads every secret from its source.
    /// - Throws: `PlanError` naming the secret and the variable or file that is missing.
    public func resolveSecrets(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        var values: [String: String] = [:]
        for (name, source) in secrets {
            switch source {
            case .environment(let variable):
                guard let value = environment[variable], !value.isEmpty else {
                    throw PlanError(file: path, message: "secret '\(name)' comes from the environment variable \(variable), which is not set",
                                    hint: "export \(variable)=... before running provision")
                }
                values[name] = value
            case .file(let file):
                let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : directory.appendingPathComponent(file)
                guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
                    throw PlanError(file: path, message: "secret '\(name)' comes from \(url.path), which cannot be read",
                                    hint: "create the file (mode 0600) or fix the path")
                }
                values[name] = text.hasSuffix("\n") ? String(text.dropLast()) : text
            }
        }
        return values
    }
}
