import Engine
import Foundation
import Infra
import Transport

/// `runtime.artifacts/<node>`: puts on a node the builds its services run (the processor on the
/// control plane, the producer on workers, and the librdkafka both load), by SFTP, skipping files
/// the node already has with the same SHA-256. Its outputs are the digests, so a rebuilt binary
/// restarts exactly the services that run it.
package struct ArtifactsStep: Step {
    /// The fan-out's id; each node's step is `runtime.artifacts/<node>`.
    package static let id = StepID("runtime.artifacts")

    package let id: StepID
    let node: String
    /// Where the builds are here (`.build/release`).
    let workloads: URL
    let librdkafka: URL
    let programs: ProcessesRuntime.Programs
    let access: RuntimeAccess

    package init(node: String, workloads: URL, librdkafka: URL, programs: ProcessesRuntime.Programs, access: RuntimeAccess) {
        self.id = Self.id.child(node)
        self.node = node
        self.workloads = workloads
        self.librdkafka = librdkafka
        self.programs = programs
        self.access = access
    }

    package var dependencies: [StepID] { [TerraformApplyStep.id, NodeReadyStep.id] }
    /// Size and modification time of each file (cheap to read on every command); a rebuild changes them.
    package var inputs: String {
        (["artifacts", node] + [workloads.appendingPathComponent("processor"), workloads.appendingPathComponent("producer"), librdkafka].map { url in
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
            return "\(url.path) \(attributes?[.size] ?? "missing") \((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }).joined(separator: "\u{0}")
    }
    package var hasCheck: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 3, backoff: .seconds(1), maxBackoff: .seconds(5)) }

    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        RuntimeAccess.scope(upstream) { _ in [node] }
    }

    /// The files this node needs.
    func artifacts(_ context: StepContext) throws -> [(name: String, artifact: Artifact)] {
        let inventory = try RuntimeAccess.inventory(context.upstream)
        let program = inventory.controlPlane?.name == node ? "processor" : "producer"
        return [
            (program, Artifact(local: workloads.appendingPathComponent(program).path, remote: program == "processor" ? programs.processor : programs.producer)),
            ("librdkafka", Artifact(local: librdkafka.path, remote: "\(programs.libraries)/librdkafka.so.1", mode: 0o644)),
        ]
    }

    /// The digest of what a node runs, read back from this step's outputs (the one place that
    /// knows their layout): `program` is `processor`, `producer` or `librdkafka`.
    static func digest(of program: String, on node: String, in upstream: [StepID: StepOutputs]) -> String {
        upstream[id.child(node)]?[program]?.scalarText ?? ""
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let installer = try access.installer(node, context)
        var outputs: StepOutputs = [:]
        for (name, artifact) in try artifacts(context) {
            let digest = try await artifact.localDigest(LocalCommandRunner(context))
            guard try await artifact.remoteDigest(with: installer) == digest else { return .unsatisfied("\(artifact.remote) on \(node) differs from \(artifact.local)") }
            outputs[name] = .string(digest)
        }
        return .satisfied(outputs)
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        await access.readings.invalidate()
        let installer = try access.installer(node, context)
        var outputs: StepOutputs = [:]
        for (name, artifact) in try artifacts(context) {
            outputs[name] = .string(try await artifact.install(with: installer, here: LocalCommandRunner(context)) { context.log.write("\(node): \($0)") })
        }
        return outputs
    }
}
