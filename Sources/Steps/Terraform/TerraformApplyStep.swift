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
/// Outputs: terraform's (`nodes`, `node_names`, `vpc_id`) and `ssh`: node name → host, port,
/// user and the key its host key is pinned under (the instance id).
struct TerraformApplyStep: Step {
    let id = StepID(BuiltInSteps.terraformApply)
    let planName: String
    let target: Plan.Target
    let cluster: ClusterSpec
    let sandbox: SandboxSpec?
    let moduleSource: URL
    let nodeImage: URL?

    var dependencies: [StepID] {
        [StepID(BuiltInSteps.sshKey)] + (target == .sandbox ? [StepID(BuiltInSteps.sandboxCloud)] : [])
    }
    var hasCheck: Bool { true }
    var hasTeardown: Bool { true }
    var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(5), timeout: .seconds(1800)) }

    /// The plan's cluster settings and the module's files: editing either applies again.
    var inputs: String {
        let variables = JSONValue.object(staticVariables).text
        return ["terraform", target.rawValue, variables, TerraformRunner.digest(of: moduleSource), sandbox.map { "\($0.cloudInitDelay)" } ?? ""]
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
            guard instances(outputs).allSatisfy({ running.contains($0.id) }) else { return .unsatisfied("a sandbox host is not running") }
        }
        return .satisfied(try await withSSH(outputs, context, reconcile: false))
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        let (runner, cloud) = try setUp(context)
        try await runner.prepare(context)
        try await terminateLeaks(runner, cloud, context)
        try await runner.apply(context)
        return try await withSSH(try await runner.outputs(context), context)
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
            guard case .string(let endpoint)? = context.upstream[StepID(BuiltInSteps.sandboxCloud)]?["endpoint"] else {
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

    private func instances(_ outputs: StepOutputs) -> [SandboxFleet.Instance] {
        guard case .map(let nodes)? = outputs["nodes"] else { return [] }
        return nodes.sorted { $0.key < $1.key }.compactMap { name, value in
            guard case .map(let fields) = value, case .string(let id)? = fields["id"] else { return nil }
            return SandboxFleet.Instance(id: id, node: name)
        }
    }

    /// The plan's SSH public key, from `ssh.key`.
    private func publicKey(_ context: StepContext) throws -> String {
        guard case .string(let key)? = context.upstream[StepID(BuiltInSteps.sshKey)]?["public_key"] else {
            throw StepFailure("the plan's SSH public key is unknown; run 'provision up' so ssh.key runs first", retryable: false)
        }
        return key
    }

    private func fleet(_ context: StepContext) throws -> SandboxFleet {
        SandboxFleet(stateDirectory: context.stateDirectory, image: nodeImage, authorizedKey: try publicKey(context),
                     cloudInitDelay: sandbox?.cloudInitDelay ?? .seconds(2))
    }

    /// Adds the `ssh` output (node → host, port, user, pin, and `via` when workers are reached
    /// through the control plane): in the sandbox each instance's host, on AWS its public IP, or
    /// its private IP behind the control plane.
    /// `reconcile: false` (for `check`, which must not change anything) reads the recorded hosts.
    private func withSSH(_ outputs: StepOutputs, _ context: StepContext, reconcile: Bool = true) async throws -> StepOutputs {
        var endpoints: [String: (host: String, port: Int, pin: String, privateHost: String)] = [:]
        if target == .sandbox {
            let hosts = reconcile
                ? try await fleet(context).reconcile(instances(outputs), store: context.store, log: context.log)
                : Dictionary(try SandboxFleet.hosts(context.store).filter { id, _ in instances(outputs).contains { $0.id == id } }
                    .values.map { ($0.node, $0) }, uniquingKeysWith: { $1 })
            for (node, host) in hosts { endpoints[node] = (host.address, host.port, host.instanceID, host.address) }
        } else if case .map(let nodes)? = outputs["nodes"] {
            for case (let node, .map(let fields)) in nodes {
                endpoints[node] = (fields["public_ip"]?.scalarText ?? "", 22, fields["id"]?.scalarText ?? node, fields["private_ip"]?.scalarText ?? "")
            }
        }
        let user = cluster.sshUser ?? (target == .sandbox ? "root" : "ubuntu")
        let bastion = cluster.workersViaBastion ? endpoints["control-plane"] : nil
        var ssh: [String: OutputValue] = [:]
        for (node, endpoint) in endpoints {
            var fields: [String: OutputValue] = ["port": .int(endpoint.port), "user": .string(user), "pin": .string(endpoint.pin)]
            if let bastion, node != "control-plane" {
                fields["host"] = .string(endpoint.privateHost)
                fields["via"] = .map(["host": .string(bastion.host), "port": .int(bastion.port), "pin": .string(bastion.pin)])
            } else {
                fields["host"] = .string(endpoint.host)
            }
            ssh[node] = .map(fields)
        }
        var result = outputs
        result["ssh"] = .map(ssh)
        return result
    }
}
