@testable import App
import Foundation
@testable import Kube
@testable import PlanLanguage
import Testing

/// The `allow-from-nodes` NetworkPolicies admit the plan's VPC (the nodes' own addresses), which
/// no longer contains the pods: pod and node ranges are disjoint (`k3s.cluster_cidr`).
@Suite struct NodeNetworkPolicyTests {
    static func ipBlocks(_ object: [String: Any]?) -> [String] {
        ((object?["spec"] as? [String: Any])?["ingress"] as? [[String: Any]] ?? [])
            .flatMap { $0["from"] as? [[String: Any]] ?? [] }
            .compactMap { ($0["ipBlock"] as? [String: Any])?["cidr"] as? String }
    }

    @Test func nodePolicyAdmitsThePlansVPCAndNotThePods() throws {
        let yaml = try PipelineValuesTests.render()
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        let cluster = try #require(plan.cluster), k3s = try #require(plan.k3s)
        let rendered = try #require(try PipelineValuesTests.objects(yaml, PipelineSpec())["NetworkPolicy app/allow-from-nodes"])
        let shipped = try Self.ipBlocks(rendered).map { try #require(IPv4CIDR($0)) }
        #expect(shipped == [cluster.vpcCIDR], "the overlay names the shipped plan's VPC")
        #expect(shipped.allSatisfy { !$0.overlaps(k3s.clusterCIDR) && !$0.overlaps(k3s.serviceCIDR) }, "no pod or Service address is a node address")

        let moved = try #require(IPv4CIDR("10.60.0.0/16"))
        let objects = try Manifests.select(yaml, namespace: "app", values: PipelineValues(pipeline: PipelineSpec(), nodeNetwork: moved)).objects
        let policy = try #require(objects.first { $0.0.kind == "NetworkPolicy" && $0.0.name == "allow-from-nodes" })
        #expect(Self.ipBlocks(try JSONSerialization.jsonObject(with: Data(policy.1.utf8)) as? [String: Any]) == ["10.60.0.0/16"],
                "a plan with another VPC gets its own range written in")
        #expect(PipelineValues(pipeline: PipelineSpec(), nodeNetwork: moved).inputs.hasSuffix(" nodes=10.60.0.0/16"), "a changed VPC applies again")
    }
}
