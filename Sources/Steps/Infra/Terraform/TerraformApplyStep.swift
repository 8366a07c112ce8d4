import Engine
import Foundation
import JSON
import PlanLanguage

/// `terraform.apply`: creates the network, security group and nodes with the real terraform, and
/// in the sandbox gives every instance its SSH host.
///
/// Before terraform runs, whatever is tagged for the plan but not in its state (created by an
/// apply that was SIGKILLed before it could record it: instances, a key pair, a VPC with its
/// subnet, gateway, route table and security group) is removed (`CloudSweeper`), so a resume
/// never leaves a duplicate or an orphan. `check` is `plan -detailed-exitcode` (plus: nothing
/// untracked, every sandbox host up). Teardown sweeps, destroys, sweeps again and verifies that
/// nothing tagged for the plan is left; in a sandbox whose moto is gone (a reboot) it starts moto
/// again first, so `down` always finishes.
///
/// Output: the `ClusterInventory` (every node, its addresses and the SSH route to it, pinned
/// under its instance id).
package struct TerraformApplyStep: Step {
    /// This step's id.
    package static let id = StepID("terraform.apply")
    /// The AMI sandbox nodes are created from when the plan names none: one moto's EC2 API knows.
    static let sandboxAMI = "ami-785db401"

    package var id: StepID { Self.id }
    let planName: String
    let target: Plan.Target
    let cluster: ClusterSpec
    let sandbox: SandboxSpec?
    let moduleSource: URL
    let nodeImage: URL?

    /// The step for `planName`'s machines: `moduleSource` is terraform/, `nodeImage` the sandbox's
    /// node image (nil on aws).
    package init(planName: String, target: Plan.Target, cluster: ClusterSpec, sandbox: SandboxSpec?, moduleSource: URL,
                 nodeImage: URL?) {
        self.planName = planName
        self.target = target
        self.cluster = cluster
        self.sandbox = sandbox
        self.moduleSource = moduleSource
        self.nodeImage = nodeImage
    }

    package var dependencies: [StepID] {
        [SSHKeyStep.id] + (target == .sandbox ? [SandboxCloudStep.id] : [])
    }
    package var hasCheck: Bool { true }
    /// Kept by `down --keep-infra`.
    package var isInfrastructure: Bool { true }
    package var hasTeardown: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(5), timeout: .seconds(1800)) }

    /// The plan's cluster settings and the module's files: editing either applies again.
    package var inputs: String {
        let variables = JSONValue.object(staticVariables).text
        return ["terraform", target.rawValue, variables, TerraformRunner.digest(of: moduleSource), sandbox.map { "\($0.cloudInitDelay)\($0.initSystem == .systemd ? " systemd" : "")" } ?? "",
                ClusterInventory.layoutVersion]
            .joined(separator: "\u{0}")
    }

    /// The cluster keys among the module's variables (`cluster.worker_count`), and the sandbox's
    /// delay and init system.
    package var planKeys: [String: String] {
        var keys = Dictionary(uniqueKeysWithValues: staticVariables.filter { $0.key != "sandbox_container_node" }.map { name, value in
            (name == "plan_name" ? "name" : "cluster.\(name == "ami_id" ? "ami" : name)", value.text)
        })
        if let sandbox {
            keys["sandbox.cloud_init_delay"] = sandbox.cloudInitDelay.formatted
            keys["sandbox.init"] = sandbox.initSystem.rawValue
        }
        return keys
    }

    /// Whether the nodes are systemd-nspawn machines (sandbox `init: systemd`), whose user data
    /// leaves out what a container cannot do (terraform's `sandbox_container_node`).
    var containerNodes: Bool { target == .sandbox && sandbox?.initSystem == .systemd }

    var staticVariables: [String: JSONValue] {
        var variables: [String: JSONValue] = [
            "plan_name": .string(planName), "region": .string(cluster.region),
            "allowed_cidrs": .array(cluster.allowedCIDRs.map(JSONValue.string)), "allow_world_admin": .bool(cluster.allowWorldAdmin),
            "worker_count": .number(Double(cluster.workerCount)), "instance_type": .string(cluster.instanceType),
            "ami_id": .string(cluster.ami ?? (target == .sandbox ? Self.sandboxAMI : "")), "root_volume_gb": .number(Double(cluster.rootVolumeGB)),
            "vpc_cidr": .string(cluster.vpcCIDR.description),
        ]
        if containerNodes { variables["sandbox_container_node"] = .bool(true) }
        return variables
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let (runner, cloud) = try setUp(context)
        guard FileManager.default.fileExists(atPath: runner.stateFile.path) else { return .unsatisfied("terraform has not created anything yet") }
        try await runner.prepare(context)
        try await warmUp(cloud, context)
        let leaked = try await sweeper(cloud).leaks(keeping: runner.recordedResources())
        guard leaked.isEmpty else { return .unsatisfied("tagged for the plan but not in the terraform state: \(leaked)") }
        // terraform starts its provider itself here: a check takes no lock (`status --audit`), and
        // the provider server's record is the locked run's.
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

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let (runner, cloud) = try setUp(context)
        // An orphaned terraform is stopped (it saves its state) before the sweep reads that state;
        // then `init` runs beside the sandbox's EC2 warm-up and the sweep, which need it for nothing.
        try await runner.interruptOrphan(context)
        async let prepared: Void = runner.prepare(context)
        try await warmUp(cloud, context)
        try await sweeper(cloud).sweep(keeping: runner.recordedResources(), log: context.log.write)
        try await prepared
        // In the sandbox, each instance's machine boots while terraform still waits for it, as on EC2.
        let outputs = try await withProvider(runner, context) { runner in
            let reported = target == .sandbox
                ? try await SandboxEarlyBoot(fleet: try fleet(context), ec2: cloud.ec2, plan: planName)
                    .during({ try await runner.apply(context) }, store: context.store, log: context.log)
                : try await runner.apply(context)
            return if let reported { reported } else { try await runner.outputs(context) }
        }
        if case .map(let ami)? = outputs["ami"], case .string(let id)? = ami["id"], case .string(let source)? = ami["source"] {
            context.log.write("the nodes run \(id) (\(source == "plan" ? "cluster.ami" : source.replacingOccurrences(of: "canonical:", with: "Canonical's ")))")
        }
        return try await inventory(outputs, context).outputs
    }

    package func teardown(_ context: StepContext) async throws {
        let (runner, cloud) = try setUp(context, endpoint: target == .sandbox ? try await runningSandboxCloud(context) : nil)
        try await runner.prepare(context)
        try await warmUp(cloud, context)
        let sweeper = sweeper(cloud)
        try await sweeper.sweep(keeping: runner.recordedResources(), log: context.log.write)
        try await withProvider(runner, context) { try await $0.destroy(context) }
        try await sweeper.sweep(keeping: runner.recordedResources(), log: context.log.write)
        let left = try await cloud.ec2.resources(plan: planName)
        if target == .sandbox { _ = try await fleet(context).reconcile([], store: context.store, log: context.log) }
        guard left.isEmpty else {
            throw StepFailure("after destroy, still tagged provision:plan=\(planName): \(left); run 'provision down' again")
        }
        context.log.write("verified: nothing tagged provision:plan=\(planName) is left (\(CloudResourceKind.allCases.map(\.plural).joined(separator: ", ")))")
    }

    // MARK: Helpers

    /// The runner and the cloud; `endpoint` overrides the sandbox endpoint `sandbox.cloud` recorded.
    private func setUp(_ context: StepContext, endpoint: String? = nil) throws -> (TerraformRunner, CloudAccess) {
        let cloud: CloudAccess
        if target == .sandbox {
            guard let endpoint = endpoint ?? SandboxCloudStep.endpoint(in: context.upstream) else {
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

    /// The sandbox's moto answers EC2 (`SandboxCloud.warmUp`: its first call builds its EC2
    /// backend, with a budget of its own); nothing on AWS.
    private func warmUp(_ cloud: CloudAccess, _ context: StepContext) async throws {
        guard target == .sandbox else { return }
        try await SandboxCloud.warmUp(cloud.ec2.endpoint, logFile: SandboxCloud.logFile(context.stateDirectory))
    }

    /// Runs `body` with one provider process for all its terraform commands in the sandbox
    /// (`ProviderServer`); on AWS terraform starts its provider itself.
    private func withProvider<T>(_ runner: TerraformRunner, _ context: StepContext, _ body: (TerraformRunner) async throws -> T) async throws -> T {
        guard target == .sandbox else { return try await body(runner) }
        return try await runner.sharingProvider(context, body)
    }

    private func sweeper(_ cloud: CloudAccess) -> CloudSweeper {
        CloudSweeper(ec2: cloud.ec2, plan: planName)
    }

    /// The sandbox's EC2 endpoint for a teardown: the running moto's, or, when it is gone (a
    /// reboot), a new one's. moto kept everything in memory, so terraform then finds nothing left
    /// to destroy, and `sandbox.cloud`'s teardown stops the new moto.
    private func runningSandboxCloud(_ context: StepContext) async throws -> String {
        let cloud = SandboxCloud(stateDirectory: context.stateDirectory, nodeImage: nodeImage)
        if let record = cloud.running() { return record.endpoint }
        context.log.write("the sandbox EC2 API is not running (the machine rebooted, or moto was killed): starting it to tear down; what it held is gone with it")
        return try await cloud.start(log: context.log).endpoint
    }

    /// The instances of `inventory`, by node name.
    private func instances(_ inventory: ClusterInventory) -> [SandboxFleet.Instance] {
        inventory.nodes.sorted { $0.name < $1.name }.map { SandboxFleet.Instance(id: $0.instanceID, node: $0.name) }
    }

    /// The plan's SSH public key, from `ssh.key`.
    private func publicKey(_ context: StepContext) throws -> String {
        guard let key = SSHKeyStep.publicKey(in: context.upstream) else {
            throw StepFailure("the plan's SSH public key is unknown; run 'provision up' so ssh.key runs first", retryable: false)
        }
        return key
    }

    private func fleet(_ context: StepContext) throws -> SandboxFleet {
        let ec2 = containerNodes ? try setUp(context).1.ec2 : nil
        return SandboxFleet(stateDirectory: context.stateDirectory, image: nodeImage, authorizedKey: try publicKey(context),
                            cloudInitDelay: sandbox?.cloudInitDelay ?? .seconds(2), initSystem: sandbox?.initSystem ?? .openrc, cloud: ec2)
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
            for index in inventory.nodes.indices { inventory.nodes[index].initSystem = hosts[inventory.nodes[index].name]?.initSystem }
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
