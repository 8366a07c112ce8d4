import Digest
import Engine
import Foundation
import Infra
import NodeRuntime

/// `platform` and `workloads`: one namespace of the k8s/ tree (`platform`: Kafka, MongoDB;
/// `workloads`: the app namespace's processor, producers, HPA), rendered here from the plan's
/// overlay (kustomize), uploaded to the control plane as JSON and applied there
/// server-side (field manager `provision`) with the generated
/// Secrets (DeploySecrets). Objects the previous apply made that the new rendering lacks are
/// deleted: the applied set is recorded in the store (resource kind `k8s.applied`, before the apply
/// as the union of old and new, after the prune as the new set, with the rendered digest once the
/// rollouts finished), so a run killed in between still prunes them. Then every Deployment and StatefulSet must roll out (the conditions `rollout
/// status` uses) within `k3s.rollout_timeout`; the error names each failing pod and its reason.
/// `check`: the rendered digest is the recorded one and every recorded object exists.
///
/// No teardown: under `down --keep-infra` the applied objects go with the server's datastore when
/// `k3s.server`'s teardown (which runs after this step's) uninstalls K3s; without it, with the
/// machines. The recorded set stays: a later apply prunes from it with `--ignore-not-found`.
package struct DeployStep: Step {
    /// Which part of the tree.
    package enum Part: String, Sendable {
        case platform, workloads

        /// The namespace it deploys.
        var namespace: String { self == .platform ? "platform" : "app" }
    }

    /// Where the rendered manifests are placed on the control plane.
    static let directory = "/var/lib/provision/k3s/manifests"

    let part: Part
    let settings: K3sSettings
    /// The k8s/ tree, resolved.
    let tree: URL
    /// A digest of every file under `tree`: an edited manifest makes the step run again.
    let treeDigest: String
    /// Steps that must finish first besides the cluster (`monitoring`, when the plan has it).
    let after: [StepID]

    package init(part: Part, settings: K3sSettings, tree: URL, after: [StepID] = []) {
        self.part = part
        self.after = after
        self.settings = settings
        self.tree = tree
        treeDigest = Self.digest(of: tree)
    }

    package var id: StepID { StepID(part.rawValue) }
    package var dependencies: [StepID] {
        [TerraformApplyStep.id, ClusterReadyStep.id] + (part == .workloads ? [StepID(Part.platform.rawValue)] : []) + after
    }
    package var inputs: String {
        "\(settings.inputs) manifests=\(tree.path) overlay=\(settings.spec.overlay) tree=\(treeDigest) rollout timeout=\(settings.spec.rolloutTimeout.formatted) "
            + PipelineValues(pipeline: settings.pipeline, nodeNetwork: settings.nodeNetwork).inputs
    }
    package var planKeys: [String: String] {
        settings.planKeys.merging(settings.spec.planKeys(["manifests", "overlay", "rollout_timeout"])) { $1 }
            .merging(settings.pipeline.planKeys(["rate", "gpus_per_producer", "batch_size", "batch_wait_ms", "partitions", "retention_days", "images"])) { $1 }
    }
    package var hasCheck: Bool { true }

    /// The control plane's share of the inventory: a new worker changes nothing here.
    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        RuntimeAccess.scope(upstream) { inventory in [inventory.controlPlane?.name ?? ""] }.filter { id, _ in id != ClusterReadyStep.id }
    }

    /// The SHA-256 over every regular file's path and contents under `directory` ("" when unreadable).
    static func digest(of directory: URL) -> String {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else { return "" }
        var parts: [String] = []
        for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            let data = FileManager.default.contents(atPath: url.path) ?? Data()
            parts.append(url.path.dropFirst(directory.path.count) + "\u{0}" + SHA256.hex(Array(data)))
        }
        return SHA256.hex(parts.sorted().joined(separator: "\n"))
    }

    // MARK: rendering and the record

    private var overlay: URL { tree.appendingPathComponent("overlays").appendingPathComponent(settings.spec.overlay) }

    /// The overlay rendered here, this part's namespace selected.
    func render(_ context: StepContext) async throws -> Manifests {
        let manifests = try Manifests.select(try await AppliedSet.render(overlay, context), namespace: part.namespace, values: PipelineValues(pipeline: settings.pipeline, nodeNetwork: settings.nodeNetwork))
        guard !manifests.objects.isEmpty else {
            throw StepFailure("\(overlay.path) renders nothing in namespace \(part.namespace); check k3s.manifests and k3s.overlay", retryable: false)
        }
        return manifests
    }

    /// What the store holds for this step (`AppliedSet`).
    var applied: AppliedSet { AppliedSet(step: id) }

    func recorded(_ context: StepContext) -> AppliedSet.Record? { applied.recorded(context) }

    private func record(_ record: AppliedSet.Record, _ context: StepContext) throws { try applied.record(record, context) }

    private func outputs(_ manifests: Manifests) -> StepOutputs {
        ["namespace": .string(part.namespace), "digest": .string(manifests.digest), "objects": .list(manifests.ids.map { .string($0.description) })]
    }

    // MARK: check

    package func check(_ context: StepContext) async throws -> CheckResult {
        let manifests = try await render(context)
        guard let record = recorded(context), !record.digest.isEmpty else { return .unsatisfied("\(id) has not applied namespace \(part.namespace) yet") }
        guard record.digest == manifests.digest else { return .unsatisfied("the rendered manifests of namespace \(part.namespace) changed since the last apply") }
        let control = try settings.access.controlPlane(context)
        let missing = try await AppliedSet.missing(manifests.ids, on: control)
        return missing.isEmpty ? .satisfied(outputs(manifests)) : .unsatisfied("applied objects are missing: \(missing)")
    }

    // MARK: apply

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let control = try settings.access.controlPlane(context)
        let manifests = try await render(context)
        let last = recorded(context)
        // Another part of the tree changed (the step's inputs cover all of it): nothing to apply here.
        if let last, last.digest == manifests.digest, try await AppliedSet.missing(manifests.ids, on: control).isEmpty {
            context.log.write("the rendered manifests of namespace \(part.namespace) are as applied last (digest \(manifests.digest.prefix(12))) and all exist: nothing to apply")
            return outputs(manifests)
        }
        let previous = last?.ids ?? []
        let stale = Set(previous).subtracting(manifests.ids).sorted()
        context.log.write("rendered \(manifests.objects.count) objects of namespace \(part.namespace) from \(overlay.path) (digest \(manifests.digest.prefix(12)))")

        try await DeploySecrets.ensure(on: control, context: context)
        let file = "\(Self.directory)/\(part.rawValue).json"
        try await control.put(manifests.list, at: file, mode: 0o600)
        try record(AppliedSet.Record(digest: "", objects: Set(previous).union(manifests.ids).sorted().map(\.description)), context)
        let applied = try await control.kube(until: .now + settings.spec.rolloutTimeout).apply(
            [file, DeploySecrets.file(namespace: part.namespace)], what: "applying \(file) server-side")
        context.log.write(applied.stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        try await AppliedSet.prune(stale, on: control, context: context)
        try record(AppliedSet.Record(digest: "", objects: manifests.ids.map(\.description)), context)

        try await waitForRollouts(manifests, on: control, context: context)
        // The digest only once rolled out: after a failed rollout `check` applies the step again.
        try record(AppliedSet.Record(digest: manifests.digest, objects: manifests.ids.map(\.description)), context)
        return outputs(manifests)
    }

    // MARK: rollouts

    /// Waits until every Deployment and StatefulSet of `manifests` has rolled out and every Job has
    /// completed, or fails at `k3s.rollout_timeout` (at once for a failed Job) naming each one still
    /// pending and its failing pods (a Job: its last log lines).
    private func waitForRollouts(_ manifests: Manifests, on control: K3sNode, context: StepContext) async throws {
        let workloads = manifests.ids.filter { (["Deployment", "StatefulSet"].contains($0.kind) && $0.group == "apps") || ($0.kind == "Job" && $0.group == "batch") }
        guard !workloads.isEmpty else { return }
        let timeout = settings.spec.rolloutTimeout
        let deadline = ContinuousClock.now + timeout
        var pending: [(KubeObject, String, KubeWorkload?)] = []
        var failed = false
        while true {
            pending = []
            let result = try await control.kube(until: deadline).get(workloads.map(\.reference), namespace: part.namespace)
            let items = KubeList<KubeWorkload>.decode(result.stdout) ?? []
            for object in workloads {
                guard let item = items.first(where: { $0.metadata?.name == object.name && $0.kind == object.kind }) else {
                    pending.append((object, "not found: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))", nil)); continue
                }
                if let reason = Rollout.failed(item) {
                    pending.append((object, reason, item))
                    failed = true
                } else if let reason = Rollout.pending(item) {
                    pending.append((object, reason, item))
                }
            }
            if pending.isEmpty || failed { break }
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .seconds(1))
        }
        guard !pending.isEmpty else {
            context.log.write("rolled out: \(workloads.map { "\($0.kind.lowercased()) \($0.name)" }.joined(separator: ", "))")
            return
        }
        let pods = try await self.pods(on: control)
        var lines: [String] = []
        for (object, reason, item) in pending {
            lines.append("  \(object.kind.lowercased()) \(part.namespace)/\(object.name): \(reason)")
            if object.kind == "Job" {
                let logs = try await control.kube().logs("job/\(object.name)", namespace: part.namespace, tail: 10)
                let text = logs.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                if logs.succeeded, !text.isEmpty { lines.append("    its last log lines:\n" + text.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n")) }
                continue
            }
            let selector = item?.spec?.selector
            for pod in pods where Rollout.matches(pod, selector: selector) {
                let logs = try await crashLogs(of: pod, on: control)
                if let problem = Rollout.problem(pod, logs: { logs[$0] ?? "" }) { lines.append("    \(problem)") }
            }
        }
        throw StepFailure((failed ? "the rollout in namespace \(part.namespace) failed:\n" : "the rollout in namespace \(part.namespace) did not finish within \(timeout.formatted):\n") + lines.joined(separator: "\n")
                          + "\n  fix the cause (an image the nodes can pull, the container's crash, room for the pod), then run 'provision up'",
                          retryable: false)
    }

    /// The pods of this part's namespace.
    private func pods(on control: K3sNode) async throws -> [KubePod] {
        let result = try await control.kube().get(["pods"], namespace: part.namespace)
        return KubeList<KubePod>.decode(result.stdout) ?? []
    }

    /// The last log lines of each of `pod`'s crash-looping containers, by container name.
    private func crashLogs(of pod: KubePod, on control: K3sNode) async throws -> [String: String] {
        let name = pod.metadata?.name ?? ""
        var logs: [String: String] = [:]
        for container in pod.status?.containerStatuses ?? [] {
            guard container.state?.waiting?.reason == "CrashLoopBackOff", let containerName = container.name else { continue }
            let result = try await control.kube().logs(name, namespace: part.namespace, container: containerName, tail: 10)
            logs[containerName] = result.succeeded ? result.stdout : result.stderr
        }
        return logs
    }
}
