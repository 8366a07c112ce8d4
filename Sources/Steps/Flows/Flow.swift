import Engine
import Foundation
import Infra
import PlanLanguage
import Transport

/// Builds the step graph of a plan: the target's own flow (`LocalFlow`, `SandboxFlow`,
/// `AWSFlow`) followed by the plan's own `exec` steps. A new target gets a file here; a new kind
/// of step gets its folder by concern and is wired in by the flows that run it.
package enum Flow {
    /// The graph `plan` describes.
    /// - Parameters:
    ///   - secrets: resolved secret values by name.
    ///   - ssh: the run's SSH pool; nil for a graph only shown or validated.
    static func graph(_ plan: Plan, secrets: [String: String], ssh: SSHPool?) throws -> StepGraph {
        let builtIn: [StepGraph.Node] = switch plan.target {
        case .local: LocalFlow.nodes(plan)
        case .sandbox: SandboxFlow.nodes(plan, secrets: secrets, ssh: ssh)
        case .aws: AWSFlow.nodes(plan, secrets: secrets, ssh: ssh)
        }
        return try StepGraph(builtIn + ownSteps(plan, secrets: secrets))
    }

    /// The plan's own steps, in declaration order: `exec` steps, fan-outs for `for_each`.
    static func ownSteps(_ plan: Plan, secrets: [String: String]) -> [StepGraph.Node] {
        plan.steps.map { spec in
            let template = ExecStep(spec: spec, planDirectory: plan.directory, secrets: secrets)
            guard let forEach = spec.forEach else { return .step(template) }
            return .fanOut(FanOut(id: StepID(spec.id), source: StepID(forEach.step), output: forEach.output,
                                  dependencies: spec.needs.map { StepID($0) }) { item in template.forItem(item) })
        }
    }

    /// The steps every cluster target shares after its own first steps:
    ///
    /// ```
    /// (sandbox.cloud) ─┐
    /// ssh.key ─────────┴─► terraform.apply ─► node.ready/<node> (one per node)
    /// ```
    static func clusterNodes(_ plan: Plan, cluster: ClusterSpec, nodeImage: URL?, ssh: SSHPool?) -> [StepGraph.Node] {
        let timeout = cluster.nodeReadyTimeout
        return [
            .step(SSHKeyStep()),
            .step(TerraformApplyStep(planName: plan.name, target: plan.target, cluster: cluster, sandbox: plan.sandbox,
                                     moduleSource: plan.resolve(cluster.terraformDirectory), nodeImage: nodeImage)),
            .fanOut(FanOut(id: NodeReadyStep.id, source: TerraformApplyStep.id, output: ClusterInventory.nodeNamesOutput) { node in
                NodeReadyStep(node: node, timeout: timeout, ssh: ssh)
            }),
        ]
    }
}
