import Engine
import PlanLanguage
import Transport

/// `target: aws`: the cluster steps against AWS itself.
///
/// ```
/// ssh.key ─► terraform.apply ─► node.ready/<node> ─► (runtime: k3s, see `K3sFlow`)
/// ```
package enum AWSFlow {
    /// The built-in steps of an aws plan.
    static func nodes(_ plan: Plan, secrets: [String: String], ssh: SSHPool?) -> [StepGraph.Node] {
        guard let cluster = plan.cluster else { return [] }
        return Flow.clusterNodes(plan, cluster: cluster, nodeImage: nil, ssh: ssh) + K3sFlow.nodes(plan, secrets: secrets, ssh: ssh)
    }
}
