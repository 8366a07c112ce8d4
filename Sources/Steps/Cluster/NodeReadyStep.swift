import Engine
import Foundation

/// `node.ready/<node>`: waits until the node answers SSH (host key pinned on first contact) and
/// `cloud-init status --wait` reports `done`. Bounded by the plan's `node_ready_timeout`; a
/// timeout names the node and what was last seen. Depends only on its own node's share of the
/// Terraform outputs, so adding a worker runs only the new node's step.
struct NodeReadyStep: Step {
    let id: StepID
    let node: String
    let timeout: Duration
    let ssh: SSHPoolProvider

    init(node: String, timeout: Duration, ssh: SSHPoolProvider) {
        self.id = StepID(BuiltInSteps.nodeReady).child(node)
        self.node = node
        self.timeout = timeout
        self.ssh = ssh
    }

    var dependencies: [StepID] { [StepID(BuiltInSteps.terraformApply)] }
    var inputs: String { "node.ready \(node)" }
    var hasCheck: Bool { true }
    var retry: RetryPolicy { RetryPolicy(attempts: 3, backoff: .seconds(2), maxBackoff: .seconds(10)) }

    func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        let terraform = upstream[StepID(BuiltInSteps.terraformApply)] ?? [:]
        var share: StepOutputs = [:]
        if case .map(let nodes)? = terraform["nodes"] { share["node"] = nodes[node] }
        if case .map(let endpoints)? = terraform["ssh"] { share["ssh"] = endpoints[node] }
        return [StepID(BuiltInSteps.terraformApply): share]
    }

    func check(_ context: StepContext) async throws -> CheckResult {
        let endpoint = try endpoint(context)
        let pool = await ssh.pool(context.store)
        let result = try await pool.run("cloud-init status", on: endpoint, timeout: .seconds(20))
        guard Self.status(result.stdout) == "done" else { return .unsatisfied("cloud-init on \(node): \(result.stdout.trimmed)") }
        return .satisfied(outputs(endpoint, context))
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        let endpoint = try endpoint(context)
        let pool = await ssh.pool(context.store)
        let deadline = ContinuousClock.now + timeout
        var lastSeen = "nothing yet"
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            do {
                let remaining = deadline - ContinuousClock.now
                let result = try await pool.run("cloud-init status --wait", on: endpoint, timeout: remaining)
                let status = Self.status(result.stdout)
                switch status {
                case "done":
                    context.log.write("\(node): SSH answers, cloud-init done")
                    return outputs(endpoint, context)
                case "error", "degraded":
                    let long = try? await pool.run("cloud-init status --long", on: endpoint, timeout: .seconds(20))
                    throw StepFailure("cloud-init failed on \(endpoint): \((long?.stdout ?? result.stdout).trimmed)", retryable: false)
                case nil where result.exitStatus == 127:
                    throw StepFailure("cloud-init is not installed on \(endpoint); the node image must include it", retryable: false)
                default:
                    lastSeen = "cloud-init \(status ?? result.summary)"
                }
            } catch let error as SSHError {
                // A changed host key or a refused key: waiting cannot fix it, and neither can a retry.
                guard error.isRetryable else { throw StepFailure(error.description, retryable: false) }
                lastSeen = error.description
                if case .timedOut = error { break }
            }
            try await Task.sleep(for: .seconds(1))
        }
        throw StepFailure("node \(endpoint) was not ready within \(timeout); last seen: \(lastSeen)")
    }

    private func endpoint(_ context: StepContext) throws -> SSHEndpoint {
        guard case .map(let all)? = context.upstream[StepID(BuiltInSteps.terraformApply)]?["ssh"],
              case .map(let fields)? = all[node], case .string(let host)? = fields["host"], !host.isEmpty else {
            throw StepFailure("terraform reported no SSH address for node \(node); run 'provision up' again", retryable: false)
        }
        let port: Int = if case .int(let p)? = fields["port"] { p } else { 22 }
        let user = fields["user"]?.scalarText ?? "root"
        let key = SSHKeyStep.keyFile(context.stateDirectory).path
        var endpoint = SSHEndpoint(name: node, host: host, port: port, user: user, identityFile: key, pinKey: fields["pin"]?.scalarText)
        if case .map(let via)? = fields["via"], let bastionHost = via["host"]?.scalarText {
            let bastionPort: Int = if case .int(let p)? = via["port"] { p } else { 22 }
            endpoint.proxyJump = [SSHEndpoint(name: "control-plane", host: bastionHost, port: bastionPort, user: user, identityFile: key,
                                              pinKey: via["pin"]?.scalarText)]
        }
        return endpoint
    }

    private func outputs(_ endpoint: SSHEndpoint, _ context: StepContext) -> StepOutputs {
        var outputs: StepOutputs = ["host": .string(endpoint.host), "port": .int(endpoint.port), "user": .string(endpoint.user), "cloud_init": .string("done")]
        if case .map(let nodes)? = context.upstream[StepID(BuiltInSteps.terraformApply)]?["nodes"], case .map(let fields)? = nodes[node] {
            outputs["role"] = fields["role"]
            outputs["instance_id"] = fields["id"]
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

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
