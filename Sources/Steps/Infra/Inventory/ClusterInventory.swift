import Engine
import Foundation
import PlanLanguage
import Transport

/// The machines a cluster plan created and how to reach each one: what `terraform.apply` produces
/// and `node.ready`, `trust-host` and every later step consume.
///
/// This is the one place that knows how the inventory is laid out in the run store (the
/// `terraform.apply` step's outputs): `init(outputs:)` decodes it and `outputs` encodes it. The
/// layout is Terraform's own outputs (`nodes`, `node_names`, `vpc_id`) plus `ssh` (node → host,
/// port, user, pin and `via`), so runs recorded before this type existed decode unchanged.
public struct ClusterInventory: Sendable, Equatable {
    /// Every node, in Terraform's `node_names` order (control plane first).
    public var nodes: [Node]
    /// The cluster's VPC, when Terraform reported one.
    public var vpcID: String?

    /// The output that lists the node names, which per-node fan-outs expand over.
    public static let nodeNamesOutput = "node_names"
    /// The output that lists the workers' names, which per-worker fan-outs expand over.
    public static let workerNamesOutput = "worker_names"
    /// Changes whenever the encoded layout gains a field, so that `terraform.apply` records it again.
    static let layoutVersion = "inventory-2"

    /// The control plane (Terraform's `server` role; the first node when no role says so).
    public var controlPlane: Node? { nodes.first { $0.role == "server" } ?? nodes.first }
    /// Every node but the control plane, in order.
    public var workers: [Node] { nodes.filter { $0 != controlPlane } }

    /// One machine.
    public struct Node: Sendable, Equatable {
        /// The node's name (`control-plane`, `worker-2`).
        public var name: String
        /// Its role (`control-plane`, `worker`).
        public var role: String
        /// The EC2 instance id.
        public var instanceID: String
        /// Public address ("" when it has none).
        public var publicAddress: String
        /// Private address in the VPC ("" when unknown).
        public var privateAddress: String
        /// How to reach it over SSH; nil until `terraform.apply` has worked it out.
        public var ssh: SSHRoute?
        /// Its init system when the driver knows it without asking the node (a sandbox node it
        /// booted); nil otherwise (`node.ready` detects it on the node, once).
        public var initSystem: InitSystem?

        /// Creates a node.
        public init(name: String, role: String, instanceID: String, publicAddress: String, privateAddress: String, ssh: SSHRoute? = nil) {
            self.name = name
            self.role = role
            self.instanceID = instanceID
            self.publicAddress = publicAddress
            self.privateAddress = privateAddress
            self.ssh = ssh
        }

        /// The SSH endpoint of this node, logging in with `identityFile`.
        /// - Throws: `StepFailure` when no SSH address is known for it.
        public func endpoint(identityFile: String) throws -> SSHEndpoint {
            guard let ssh, !ssh.host.isEmpty else {
                throw StepFailure("terraform reported no SSH address for node \(name); run 'provision up' again", retryable: false)
            }
            var endpoint = SSHEndpoint(name: name, host: ssh.host, port: ssh.port, user: ssh.user, identityFile: identityFile, pinKey: ssh.pinKey)
            if let bastion = ssh.bastion {
                endpoint.proxyJump = [SSHEndpoint(name: "control-plane", host: bastion.host, port: bastion.port, user: ssh.user,
                                                  identityFile: identityFile, pinKey: bastion.pinKey)]
            }
            return endpoint
        }
    }

    /// Where a node's SSH server answers, as whom, and the name its host key is pinned under.
    public struct SSHRoute: Sendable, Equatable {
        /// Address to connect to (resolved by the bastion when there is one).
        public var host: String
        /// TCP port.
        public var port: Int
        /// Login user.
        public var user: String
        /// The pinned-key identity (the instance id), what `provision trust-host` forgets.
        public var pinKey: String
        /// The machine to reach it through (ProxyJump), if any.
        public var bastion: Bastion?

        /// Creates a route.
        public init(host: String, port: Int, user: String, pinKey: String, bastion: Bastion? = nil) {
            self.host = host
            self.port = port
            self.user = user
            self.pinKey = pinKey
            self.bastion = bastion
        }
    }

    /// The jump host in front of a node, with its own pinned-key identity.
    public struct Bastion: Sendable, Equatable {
        /// Address of the bastion.
        public var host: String
        /// Its SSH port.
        public var port: Int
        /// The name its host key is pinned under.
        public var pinKey: String

        /// Creates a bastion.
        public init(host: String, port: Int, pinKey: String) {
            self.host = host
            self.port = port
            self.pinKey = pinKey
        }
    }

    /// Creates an inventory.
    public init(nodes: [Node], vpcID: String? = nil) {
        self.nodes = nodes
        self.vpcID = vpcID
    }

    /// The node called `name`, if any.
    public func node(named name: String) -> Node? {
        nodes.first { $0.name == name }
    }

    // MARK: Encoding (the one place that knows the layout)

    private enum Key {
        static let nodes = "nodes", vpcID = "vpc_id", ssh = "ssh"
        static let id = "id", role = "role", publicIP = "public_ip", privateIP = "private_ip", initSystem = "init"
        static let host = "host", port = "port", user = "user", pin = "pin", via = "via"
    }

    /// Decodes an inventory from step outputs: Terraform's own outputs (nodes without SSH routes)
    /// or what `outputs` encoded.
    /// - Throws: `StepFailure` when the outputs hold no node map.
    public init(outputs: StepOutputs) throws {
        guard case .map(let machines)? = outputs[Key.nodes] else {
            throw StepFailure("the cluster inventory is missing (terraform reported no 'nodes'); run 'provision up' so terraform.apply records it",
                              retryable: false)
        }
        let listed = outputs[Self.nodeNamesOutput]?.items ?? []
        let names = listed + machines.keys.filter { !listed.contains($0) }.sorted()
        let routes: [String: OutputValue] = if case .map(let routes)? = outputs[Key.ssh] { routes } else { [:] }
        nodes = names.compactMap { name in
            guard case .map(let fields)? = machines[name] else { return nil }
            var node = Node(name: name, role: fields[Key.role]?.scalarText ?? "", instanceID: fields[Key.id]?.scalarText ?? "",
                            publicAddress: fields[Key.publicIP]?.scalarText ?? "", privateAddress: fields[Key.privateIP]?.scalarText ?? "",
                            ssh: routes[name].flatMap(Self.route))
            node.initSystem = fields[Key.initSystem]?.scalarText.flatMap(InitSystem.init(rawValue:))
            return node
        }
        vpcID = outputs[Key.vpcID]?.scalarText
    }

    /// The inventory as step outputs (the layout `init(outputs:)` reads).
    public var outputs: StepOutputs {
        var result: StepOutputs = [
            Self.nodeNamesOutput: .list(nodes.map { .string($0.name) }),
            Self.workerNamesOutput: .list(workers.map { .string($0.name) }),
            Key.nodes: .map(Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, Self.encode(machine: $0)) })),
        ]
        if let vpcID { result[Key.vpcID] = .string(vpcID) }
        result[Key.ssh] = .map(Dictionary(uniqueKeysWithValues: nodes.compactMap { node in node.ssh.map { (node.name, Self.encode($0)) } }))
        return result
    }

    /// One node's share of `outputs` (its machine and its route), for a step that depends only on
    /// its own node: adding a worker then runs only the new node's steps.
    public static func share(of node: String, in outputs: StepOutputs) -> StepOutputs {
        var share: StepOutputs = [:]
        if case .map(let machines)? = outputs[Key.nodes] { share["node"] = machines[node] }
        if case .map(let routes)? = outputs[Key.ssh] { share["ssh"] = routes[node] }
        return share
    }

    private static func encode(machine node: Node) -> OutputValue {
        var fields: [String: OutputValue] = [Key.id: .string(node.instanceID), Key.role: .string(node.role),
                                             Key.publicIP: .string(node.publicAddress), Key.privateIP: .string(node.privateAddress)]
        if let initSystem = node.initSystem { fields[Key.initSystem] = .string(initSystem.rawValue) }
        return .map(fields)
    }

    private static func encode(_ route: SSHRoute) -> OutputValue {
        var fields: [String: OutputValue] = [Key.host: .string(route.host), Key.port: .int(route.port), Key.user: .string(route.user),
                                             Key.pin: .string(route.pinKey)]
        if let bastion = route.bastion {
            fields[Key.via] = .map([Key.host: .string(bastion.host), Key.port: .int(bastion.port), Key.pin: .string(bastion.pinKey)])
        }
        return .map(fields)
    }

    private static func route(_ value: OutputValue) -> SSHRoute? {
        guard case .map(let fields) = value, let host = fields[Key.host]?.scalarText else { return nil }
        var bastion: Bastion?
        if case .map(let via)? = fields[Key.via], let bastionHost = via[Key.host]?.scalarText {
            bastion = Bastion(host: bastionHost, port: port(via[Key.port]), pinKey: via[Key.pin]?.scalarText ?? "\(bastionHost):\(port(via[Key.port]))")
        }
        return SSHRoute(host: host, port: port(fields[Key.port]), user: fields[Key.user]?.scalarText ?? "root",
                        pinKey: fields[Key.pin]?.scalarText ?? "\(host):\(port(fields[Key.port]))", bastion: bastion)
    }

    private static func port(_ value: OutputValue?) -> Int {
        if case .int(let port)? = value { port } else { 22 }
    }
}
