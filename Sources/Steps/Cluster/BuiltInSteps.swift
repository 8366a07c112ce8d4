import Engine
import Foundation

/// The steps a `sandbox` or `aws` plan has before its own:
///
/// ```
/// sandbox.cloud (sandbox only) ─┐
/// ssh.key ──────────────────────┴─► terraform.apply ─► node.ready/<node> (one per node)
/// ```
public enum BuiltInSteps {
    /// Every built-in id (a plan's own steps may `needs:` them, not reuse them).
    public static let ids = [SandboxCloudStep.id, SSHKeyStep.id, TerraformApplyStep.id, NodeReadyStep.id].map(\.rawValue)

    /// The built-in graph nodes of `plan`; node steps reach the machines through `ssh`.
    static func nodes(_ plan: Plan, ssh: SSHPool?) -> [StepGraph.Node] {
        guard let cluster = plan.cluster else { return [] }
        let planDirectory = URL(fileURLWithPath: plan.path).deletingLastPathComponent()
        func resolve(_ path: String) -> URL {
            path.hasPrefix("/") ? URL(fileURLWithPath: path) : planDirectory.appendingPathComponent(path).standardizedFileURL
        }
        let image = plan.sandbox.map { resolve($0.nodeImage) }
        var nodes: [StepGraph.Node] = []
        if plan.target == .sandbox, let image {
            nodes.append(.step(SandboxCloudStep(nodeImage: image)))
        }
        nodes.append(.step(SSHKeyStep()))
        nodes.append(.step(TerraformApplyStep(planName: plan.name, target: plan.target, cluster: cluster, sandbox: plan.sandbox,
                                              moduleSource: resolve(cluster.terraformDirectory), nodeImage: image)))
        let timeout = cluster.nodeReadyTimeout
        nodes.append(.fanOut(FanOut(id: NodeReadyStep.id, source: TerraformApplyStep.id, output: ClusterInventory.nodeNamesOutput) { node in
            NodeReadyStep(node: node, timeout: timeout, ssh: ssh)
        }))
        return nodes
    }
}
