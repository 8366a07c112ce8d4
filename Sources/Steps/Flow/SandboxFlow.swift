import Engine

/// `target: sandbox`: the sandbox's EC2 API (moto), then the cluster steps against it, with one
/// SSH host per instance on a loopback address.
///
/// ```
/// sandbox.cloud ─┐
/// ssh.key ───────┴─► terraform.apply ─► node.ready/<node>
/// ```
enum SandboxFlow {
    /// The built-in steps of a sandbox plan.
    static func nodes(_ plan: Plan, ssh: SSHPool?) -> [StepGraph.Node] {
        guard let cluster = plan.cluster else { return [] }
        let image = plan.sandbox.map { plan.resolve($0.nodeImage) }
        return (image.map { [.step(SandboxCloudStep(nodeImage: $0))] } ?? []) + Flow.clusterNodes(plan, cluster: cluster, nodeImage: image, ssh: ssh)
    }
}
