import Yams

/// The plan's address ranges: the VPC (`cluster.vpc_cidr`), the pods (`k3s.cluster_cidr`), the
/// Services (`k3s.service_cidr`) and who may reach the admin ports (`cluster.allowed_cidrs`).
///
/// K3s's own defaults (pods 10.42.0.0/16, Services 10.43.0.0/16) collide with the VPC's default
/// 10.42.0.0/16: the first node's pod subnet would be the node subnet, and flannel's bridge would
/// take the VPC router's address. So the three ranges must be disjoint, which `validate` checks
/// before anything is created; K3s fixes both of its ranges at the first server's start.
extension PlanLoader {
    /// AWS allows VPCs of /16 to /28, and terraform's network module cuts the nodes' subnet 8 bits
    /// longer (`cidrsubnet(vpc_cidr, 8, 0)`), which AWS allows down to /28.
    static let vpcPrefixes = 16...20
    /// Each node takes a /24 of the pod range (K3s's node IPAM), so it is a /24 or larger.
    static let clusterPrefixes = 8...24
    /// kube-apiserver refuses an IPv4 Service range larger than /12; the DNS is its 10th address.
    static let servicePrefixes = 12...28

    /// `text` as a CIDR block, or a `PlanError` at `node` saying what to write: not a block, host
    /// bits set (naming the block it is), or a prefix outside `prefixes`.
    static func cidr(_ text: String, _ key: String, at node: Node, reader: PlanReader, example: String,
                     prefixes: ClosedRange<Int> = 0...32) throws -> IPv4CIDR {
        guard let block = IPv4CIDR(text) else {
            throw reader.error(at: node, "'\(text)' in \(key) is not an IPv4 CIDR block", hint: "write it like \(example)")
        }
        guard block.isNetworkAddress else {
            let one = block.prefix < 32 && key == "cluster.allowed_cidrs" ? ", or \(IPv4CIDR(address: block.address, prefix: 32)) for that one address" : ""
            throw reader.error(at: node, "'\(text)' in \(key) has host bits set: the block it names is \(block.network)",
                               hint: "write \(block.network)\(one)")
        }
        guard prefixes.contains(block.prefix) else {
            throw reader.error(at: node, "\(key) \(text) is a /\(block.prefix); it must be from /\(prefixes.lowerBound) to /\(prefixes.upperBound)",
                               hint: "write a block like \(example)")
        }
        return block
    }

    /// The VPC, pod and Service ranges are disjoint, and the pod range has a /24 for every node.
    /// Each error points at the key the plan sets (the range it names last when both are set) and
    /// names both ranges.
    static func checkNetworks(cluster: ClusterSpec, k3s: K3sSpec, top: [String: (key: Node, value: Node)], reader: PlanReader) throws {
        let c = top["cluster"].flatMap { try? reader.mapping($0.value, "cluster", allowed: clusterKeys) } ?? [:]
        let k = top["k3s"].flatMap { try? reader.mapping($0.value, "k3s", allowed: k3sKeys) } ?? [:]
        let vpcNode = c["vpc_cidr"]?.value, podNode = k["cluster_cidr"]?.value, serviceNode = k["service_cidr"]?.value
        func named(_ key: String, _ block: IPv4CIDR, given: Node?, what: String? = nil) -> String {
            let notes = (given == nil ? ["the default"] : []) + (what.map { [$0] } ?? [])
            return "\(key) \(block)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
        }
        let vpc = named("cluster.vpc_cidr", cluster.vpcCIDR, given: vpcNode, what: "the VPC, whose node subnet is \(cluster.nodeSubnet)")
        let pods = named("k3s.cluster_cidr", k3s.clusterCIDR, given: podNode)
        let services = named("k3s.service_cidr", k3s.serviceCIDR, given: serviceNode)
        let fixed = "K3s fixes its ranges at the first server's start: changing one later means a new cluster"

        let nodes = cluster.workerCount + 1
        if k3s.clusterCIDR.prefix > 24 || 1 << (24 - k3s.clusterCIDR.prefix) < nodes {
            throw reader.error(at: podNode ?? top["k3s"]?.key, "\(pods) has room for \(1 << max(0, 24 - k3s.clusterCIDR.prefix)) node(s), the plan has \(nodes)",
                               hint: "each node takes a /24 of the pod range: use a larger block, like \(free(prefix: 16, avoiding: [cluster.vpcCIDR, k3s.serviceCIDR]))")
        }
        if k3s.clusterCIDR.overlaps(cluster.vpcCIDR) {
            throw reader.error(at: podNode ?? vpcNode, "\(pods) overlaps \(vpc)",
                               hint: "pods need addresses outside the VPC: set k3s.cluster_cidr to a free range such as \(free(prefix: 16, avoiding: [cluster.vpcCIDR, k3s.serviceCIDR])); \(fixed)")
        }
        if k3s.serviceCIDR.overlaps(cluster.vpcCIDR) {
            throw reader.error(at: serviceNode ?? vpcNode, "\(services) overlaps \(vpc)",
                               hint: "Services need addresses outside the VPC: set k3s.service_cidr to a free range such as \(free(prefix: 16, avoiding: [cluster.vpcCIDR, k3s.clusterCIDR])); \(fixed)")
        }
        if k3s.serviceCIDR.overlaps(k3s.clusterCIDR) {
            throw reader.error(at: serviceNode ?? podNode, "\(services) overlaps \(pods)",
                               hint: "pods and Services need ranges of their own: set k3s.service_cidr to a free range such as \(free(prefix: 16, avoiding: [cluster.vpcCIDR, k3s.clusterCIDR])); \(fixed)")
        }
    }

    /// The first 10.x.0.0/`prefix` from 10.52.0.0 on that overlaps none of `taken`, for a hint.
    static func free(prefix: Int, avoiding taken: [IPv4CIDR]) -> IPv4CIDR {
        let step = UInt32(1) << UInt32(32 - prefix)
        var address = IPv4CIDR("10.52.0.0/16")!.address
        while address < IPv4CIDR("11.0.0.0/8")!.address {
            let candidate = IPv4CIDR(address: address, prefix: prefix)
            if !taken.contains(where: candidate.overlaps) { return candidate }
            address += step
        }
        return IPv4CIDR("172.20.0.0/16")!
    }
}
