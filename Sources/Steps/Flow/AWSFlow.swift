import Engine

/// `target: aws`: the cluster steps against AWS itself.
///
/// ```
/// ssh.key ─► terraform.apply ─► node.ready/<node>
/// ```
enum AWSFlow {
    /// The built-in steps of an aws plan.
    static func nodes(_ plan: Plan, ssh: SSHPool?) -> [StepGraph.Node] {
        guard let cluster = plan.cluster else { return [] }
        return Flow.clusterNodes(plan, cluster: cluster, nodeImage: nil, ssh: ssh)
    }
}
