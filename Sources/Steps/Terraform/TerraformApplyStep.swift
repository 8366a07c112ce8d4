import Engine
import Foundation

/// `terraform.apply`: creates the network, security group and nodes with the real terraform, and
/// in the sandbox gives every instance its SSH host.
///
/// Before terraform runs, instances tagged for the plan that the state does not know (launched
/// by an apply that was SIGKILLed before it could record them) are terminated, so a resume never
/// leaves a duplicate or an orphan. `check` is `plan -detailed-exitcode` (plus: every sandbox
/// host up). Teardown destroys, then verifies that nothing tagged for the plan is left.
///
/// Output: the `ClusterInventory` (every node, its addresses and the SSH route to it, pinned
/// under its instance id).
struct TerraformApplyStep: Step {
    /// This step's id.
    static let id = StepID("terraform.apply")

    var id: StepID { Self.id }
    let planName: String
    let target: Plan.Target
    let cluster: ClusterSpec
    let sandbox: SandboxSpec?
    let moduleSource: URL
    let nodeImage: URL?

    var dependencies: [StepID] {
        [SSHKeyStep.id] + (target == .sandbox ? [SandboxCloudStep.id] : [])
    }
    var hasCheck: Bool { true }
    var hasTeardown: Bool { true }
    var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(5), timeout: .seconds(1800)) }

    /// The plan's cluster settings and the module's files: editing either applies again.
    var inputs: String {
        let variables = JSONValue.object(staticVariables).text
        return ["terraform", target.rawValue, variables, TerraformRunner.digest(of: moduleSource), sandbox.map { "\($0.cloudInitDelay)" } ?? "",
                ClusterInventory.layoutVersion]
            .joined(separator: "\u{0}")
    }

    var staticVariables: [String: JSONValue] {
        [
            "plan_name": .string(planName), "region": .string(cluster.region),
            "allowed_cidrs": .array(cluster.allowedCIDRs.map(JSONValue.string)), "allow_world_admin": .bool(cluster.allowWorldAdmin),
            "worker_count": .number(Double(cluster.workerCount)), "instance_type": .string(cluster.instanceType),
            "ami_id": .string(cluster.ami ?? "ami-785db401"), "root_volume_gb": .number(Double(cluster.rootVolumeGB)),
        ]
    }

    func check(_ context: StepContext) async throws -> CheckResult {
        let (runner, cloud) = try setUp(context)
        guard FileManager.default.fileExists(atPath: runner.stateFile.path) else { return .unsatisfied("terraform has not created anything yet") }
        try await runner.prepare(context)
        let leaked = try await leakedInstances(runner, cloud)
        guard leaked.isEmpty else { return .unsatisfied("\(leaked.count) instance(s) tagged for the plan are not in the state") }
        guard try await runner.isConverged(context) else { return .unsatisfied("terraform plan shows changes") }
        let outputs = try await runner.outputs(context)
        if target == .sandbox {
            let hosts = try SandboxFleet.hosts(context.store)
            let running = Set(hosts.values.filter(\.isRunning).map(\.instanceID))
            guard instances(try ClusterInventory(outputs: outputs)).allSatisfy({ running.contains($0.id) }) else {
                return .unsatisfied("a sandbox host is not running")
            }
        }
        return .satisfied(try await inventory(outputs, context, reconcile: false).outputs)
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        let (runner, cloud) = try setUp(context)
        try await runner.prepare(context)
        try await terminateLeaks(runner, cloud, context)
        try await runner.apply(context)
        return try await inventory(try await runner.outputs(context), context).outputs
    }

    func teardown(_ context: StepContext) async throws {
        let (runner, cloud) = try setUp(context)
        try await runner.prepare(context)
        try await terminateLeaks(runner, cloud, context)
        try await runner.destroy(context)
        let instances = try await cloud.ec2.liveInstances(plan: planName)
        let vpcs = try await cloud.ec2.vpcs(plan: planName)
        if target == .sandbox { _ = try await fleet(context).reconcile([], store: context.store, log: context.log) }
        guard instances.isEmpty && vpcs.isEmpty else {
            throw StepFailure("after destroy, still tagged provision:plan=\(planName): instances \(instances.map(\.id)), VPCs \(vpcs); run 'provision down' again")
        }
        context.log.write("verified: no instance or VPC tagged provision:plan=\(planName) is left")
    }

    // MARK: Helpers

    private func setUp(_ context: StepContext) throws -> (TerraformRunner, CloudAccess) {
        let cloud: CloudAccess
        if target == .sandbox {
            guard case .string(let endpoint)? = context.upstream[SandboxCloudStep.id]?["endpoint"] else {
                throw StepFailure("the sandbox EC2 endpoint is unknown; run 'provision up' so sandbox.cloud runs first", retryable: false)
            }
            cloud = .sandbox(endpoint: endpoint, region: cluster.region)
        } else {
            cloud = try .aws(region: cluster.region)
        }
        var variables = staticVariables
        variables["ssh_public_key"] = .string(try publicKey(context))
        let runner = TerraformRunner(moduleSource: moduleSource, stateDirectory: context.stateDirectory, variables: variables,
                                     providerOverride: cloud.providerOverride, environment: cloud.environment)
        return (runner, cloud)
    }

    private func leakedInstances(_ runner: TerraformRunner, _ cloud: CloudAccess) async throws -> [String] {
        let known = runner.instancesInState()
        return try await cloud.ec2.liveInstances(plan: planName).map(\.id).filter { !known.contains($0) }
    }

    private func terminateLeaks(_ runner: TerraformRunner, _ cloud: CloudAccess, _ context: StepContext) async throws {
        let leaked = try await leakedInstances(runner, cloud)
        guard !leaked.isEmpty else { return }
        context.log.write("terminating \(leaked.count) leaked instance(s) \(leaked.joined(separator: ", ")): tagged for this plan but not in the terraform state (an interrupted apply launched them)")
        try await cloud.ec2.terminate(leaked)
    }

    /// The instances of `inventory`, by node name.
    private func instances(_ inventory: ClusterInventory) -> [SandboxFleet.Instance] {
        inventory.nodes.sorted { $0.name < $1.name }.map { SandboxFleet.Instance(id: $0.instanceID, node: $0.name) }
    }

    /// The plan's SSH public key, from `ssh.key`.
    private func publicKey(_ context: StepContext) throws -> String {
        guard case .string(let key)? = context.upstream[SSHKeyStep.id]?["public_key"] else {
            throw StepFailure("the plan's SSH public key is unknown; run 'provision up' so ssh.key runs first", retryable: false)
        }
        return key
    }

    private func fleet(_ context: StepContext) throws -> SandboxFleet {
        SandboxFleet(stateDirectory: context.stateDirectory, image: nodeImage, authorizedKey: try publicKey(context),
                     cloudInitDelay: sandbox?.cloudInitDelay ?? .seconds(2))
    }

    /// The cluster inventory: Terraform's nodes with the SSH route to each (in the sandbox each
    /// instance's host, on AWS its public IP, or its private IP behind the control plane).
    /// `reconcile: false` (for `check`, which must not change anything) reads the recorded hosts.
    private func inventory(_ outputs: StepOutputs, _ context: StepContext, reconcile: Bool = true) async throws -> ClusterInventory {
        var inventory = try ClusterInventory(outputs: outputs)
        var endpoints: [String: (host: String, port: Int, pin: String, privateHost: String)] = [:]
        if target == .sandbox {
            let wanted = instances(inventory)
            let hosts = reconcile
                ? try await fleet(context).reconcile(wanted, store: context.store, log: context.log)
                : Dictionary(try SandboxFleet.hosts(context.store).filter { id, _ in wanted.contains { $0.id == id } }
                    .values.map { ($0.node, $0) }, uniquingKeysWith: { $1 })
            for (node, host) in hosts { endpoints[node] = (host.address, host.port, host.instanceID, host.address) }
        } else {
            for node in inventory.nodes {
                endpoints[node.name] = (node.publicAddress, 22, node.instanceID.isEmpty ? node.name : node.instanceID, node.privateAddress)
            }
        }
        let user = cluster.sshUser ?? (target == .sandbox ? "root" : "ubuntu")
        let bastion = cluster.workersViaBastion ? endpoints["control-plane"] : nil
        for index in inventory.nodes.indices {
            let name = inventory.nodes[index].name
            guard let endpoint = endpoints[name] else { continue }
            if let bastion, name != "control-plane" {
                inventory.nodes[index].ssh = .init(host: endpoint.privateHost, port: endpoint.port, user: user, pinKey: endpoint.pin,
                                                   bastion: .init(host: bastion.host, port: bastion.port, pinKey: bastion.pin))
            } else {
                inventory.nodes[index].ssh = .init(host: endpoint.host, port: endpoint.port, user: user, pinKey: endpoint.pin)
            }
        }
        return inventory
    }
}
