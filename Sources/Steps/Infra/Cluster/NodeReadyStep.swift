import Engine
import Foundation
import PlanLanguage
import Transport

/// `node.ready/<node>`: waits until the node answers SSH (host key pinned on first contact) and
/// `cloud-init status --wait` reports `done`. Bounded by the plan's `node_ready_timeout`; a
/// timeout names the node and what was last seen. Depends only on its own node's share of the
/// Terraform outputs, so adding a worker runs only the new node's step.
package struct NodeReadyStep: Step {
    /// The fan-out's id; each node's step is `node.ready/<node>`.
    package static let id = StepID("node.ready")

    package let id: StepID
    let node: String
    let timeout: Duration
    /// The run's SSH pool; nil in a graph built only to be shown or validated.
    let ssh: SSHPool?

    package init(node: String, timeout: Duration, ssh: SSHPool?) {
        self.id = Self.id.child(node)
        self.node = node
        self.timeout = timeout
        self.ssh = ssh
    }

    package var dependencies: [StepID] { [TerraformApplyStep.id] }
    package var inputs: String { "node.ready \(node)" }
    package var hasCheck: Bool { true }
    /// Kept by `down --keep-infra`.
    package var isInfrastructure: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 3, backoff: .seconds(2), maxBackoff: .seconds(10)) }

    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        [TerraformApplyStep.id: ClusterInventory.share(of: node, in: upstream[TerraformApplyStep.id] ?? [:])]
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let remote = try runner(context)
        let result = try await remote.run("cloud-init status", timeout: .seconds(20))
        guard Self.status(result.stdout) == "done" else { return .unsatisfied("cloud-init on \(node): \(result.stdout.trimmed)") }
        return .satisfied(outputs(remote.endpoint, context, initSystem: try await initSystem(remote, context)))
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let remote = try runner(context)
        let endpoint = remote.endpoint
        let deadline = ContinuousClock.now + timeout
        var lastSeen = "nothing yet"
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            do {
                let remaining = deadline - ContinuousClock.now
                let result = try await remote.run("cloud-init status --wait", timeout: remaining)
                let status = Self.status(result.stdout)
                switch status {
                case "done":
                    let initSystem = try await initSystem(remote, context)
                    context.log.write("\(node): SSH answers, cloud-init done, init \(initSystem.rawValue)")
                    return outputs(endpoint, context, initSystem: initSystem)
                case "error", "degraded":
                    let long = try? await remote.run("cloud-init status --long", timeout: .seconds(20))
                    throw StepFailure("cloud-init failed on \(endpoint): \((long?.stdout ?? result.stdout).trimmed)", retryable: false)
                case nil where result.exitStatus == 127:
                    throw StepFailure("cloud-init is not installed on \(endpoint); the node image must include it", retryable: false)
                default:
                    lastSeen = "cloud-init \(status ?? result.summary)"
                }
            } catch let error as SSHError {
                // A changed host key or a refused key: waiting cannot fix it, and neither can a retry.
                guard error.isRetryable else { throw StepFailure(wrapping: error) }
                lastSeen = error.description
                if case .timedOut = error { break }
            }
            try await Task.sleep(for: .seconds(1))
        }
        throw StepFailure("node \(endpoint) was not ready within \(timeout); last seen: \(lastSeen)")
    }

    /// This node in the inventory `terraform.apply` recorded.
    private func inventoryNode(_ context: StepContext) throws -> ClusterInventory.Node {
        let inventory = try ClusterInventory(outputs: context.upstream[TerraformApplyStep.id] ?? [:])
        guard let node = inventory.node(named: node) else {
            throw StepFailure("terraform reported no SSH address for node \(node); run 'provision up' again", retryable: false)
        }
        return node
    }

    /// Runs commands on this node over the run's pool.
    private func runner(_ context: StepContext) throws -> NodeCommandRunner {
        guard let ssh else {
            throw StepFailure("node.ready/\(node) was built without an SSH pool; run it through 'provision up'", retryable: false)
        }
        return NodeCommandRunner(pool: ssh, endpoint: try inventoryNode(context).endpoint(identityFile: SSHKeyStep.keyFile(context.stateDirectory).path),
                                 attempt: RemoteAttempt(context))
    }

    /// The node's init system: the inventory's (a sandbox node the driver booted), else detected
    /// on the node (`init` in this step's outputs, read by the steps that diagnose its services).
    private func initSystem(_ runner: NodeCommandRunner, _ context: StepContext) async throws -> InitSystem {
        if let recorded = try? inventoryNode(context).initSystem { return recorded }
        return InitSystem(rawValue: try await runner.run(InitSystem.detectCommand, timeout: .seconds(20)).stdout.trimmed) ?? .openrc
    }

    /// The init system this step found on `node`, among a dependent step's upstream outputs.
    package static func initSystem(of node: String, in upstream: [StepID: StepOutputs]) -> InitSystem? {
        upstream[id.child(node)]?["init"]?.scalarText.flatMap(InitSystem.init(rawValue:))
    }

    private func outputs(_ endpoint: SSHEndpoint, _ context: StepContext, initSystem: InitSystem) -> StepOutputs {
        var outputs: StepOutputs = ["host": .string(endpoint.host), "port": .int(endpoint.port), "user": .string(endpoint.user), "cloud_init": .string("done"),
                                    "init": .string(initSystem.rawValue)]
        if let node = try? inventoryNode(context) {
            outputs["role"] = .string(node.role)
            outputs["instance_id"] = .string(node.instanceID)
        }
        return outputs
    }

    /// The word after `status:` in cloud-init's answer.
    static func status(_ output: String) -> String? {
        output.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("status:") ? trimmed.dropFirst("status:".count).trimmingCharacters(in: .whitespaces) : nil
        }.last
    }
}
