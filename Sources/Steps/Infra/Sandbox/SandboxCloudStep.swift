import Engine
import Foundation

/// `sandbox.cloud`: the sandbox's stand-in for AWS, its EC2 API (`SandboxCloud`: moto on a
/// loopback port, running between commands until `down`) and the machines behind its instances
/// (the SSH hosts `terraform.apply` recorded). Output: `endpoint` (`http://127.0.0.1:PORT`).
///
/// Both are local processes that die with this machine, so the check is cheap and runs on every
/// `up` (`checksEveryRun`): moto answers and every recorded host runs. After a reboot, `apply`
/// starts moto again (empty, on a new endpoint, so `terraform.apply` and everything after it are
/// applied again); when only hosts died, it keeps moto and `terraform.apply`, which runs again
/// after it, restarts them on their addresses with their host keys and files.
package struct SandboxCloudStep: Step {
    /// This step's id.
    package static let id = StepID("sandbox.cloud")

    package var id: StepID { Self.id }
    /// The node image checked here so a missing one fails first, with what to run. Bootstrap
    /// puts it in `.tools/`, next to the venv that may hold moto.
    let nodeImage: URL

    /// The step whose machines boot from `nodeImage`.
    package init(nodeImage: URL) { self.nodeImage = nodeImage }

    package var inputs: String { "sandbox.cloud moto" }

    /// The EC2 (and S3) API's URL this step recorded, among a dependent step's upstream outputs.
    package static func endpoint(in upstream: [StepID: StepOutputs]) -> String? {
        upstream[id]?["endpoint"]?.scalarText
    }
    package var hasCheck: Bool { true }
    /// Kept by `down --keep-infra`.
    package var isInfrastructure: Bool { true }
    package var hasTeardown: Bool { true }
    package var checksEveryRun: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(1)) }

    package func check(_ context: StepContext) async throws -> CheckResult {
        guard let record = cloud(context).running() else { return .unsatisfied("the sandbox EC2 API is not running") }
        let stopped = try deadHosts(context)
        guard stopped.isEmpty else { return .unsatisfied("sandbox hosts are not running: \(stopped.joined(separator: ", "))") }
        return .satisfied(["endpoint": .string(record.endpoint)])
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        guard FileManager.default.fileExists(atPath: nodeImage.appendingPathComponent("usr/bin/cloud-init").path) else {
            throw StepFailure(SandboxError.missingImage(path: nodeImage.path).description, retryable: false)
        }
        if let record = cloud(context).running() {
            let stopped = try deadHosts(context)
            if !stopped.isEmpty {
                context.log.write("sandbox hosts are not running: \(stopped.joined(separator: ", ")); terraform.apply runs again and restarts them")
            }
            return ["endpoint": .string(record.endpoint)]
        }
        if let previous = SandboxCloud.load(context.stateDirectory) {
            context.log.write("the sandbox EC2 API on port \(previous.port) is gone (the machine rebooted, or moto was killed), and what it held with it: starting a new, empty one; terraform.apply creates the cluster again")
        }
        // Its first EC2 call (the slow one) is terraform.apply's warm-up, beside `terraform init`.
        return ["endpoint": .string(try await cloud(context).start(log: context.log, warm: false).endpoint)]
    }

    package func teardown(_ context: StepContext) async throws {
        await cloud(context).stop()
    }

    private func cloud(_ context: StepContext) -> SandboxCloud {
        SandboxCloud(stateDirectory: context.stateDirectory, nodeImage: nodeImage)
    }

    /// The recorded sandbox hosts that are not running, as `node (instance)`.
    private func deadHosts(_ context: StepContext) throws -> [String] {
        try SandboxFleet.hosts(context.store).values.filter { !$0.isRunning }.map { "\($0.node) (\($0.instanceID))" }.sorted()
    }
}
