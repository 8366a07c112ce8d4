import Engine
import Foundation

/// `cluster.ready`: every planned node Ready in the cluster, and the core deployments K3s ships
/// (coredns, metrics-server, local-path-provisioner, less what `k3s.disable` removes) available,
/// within `k3s.ready_timeout`. The error lists each missing or NotReady node with its Ready
/// condition's reason and message, and each unavailable deployment.
struct ClusterReadyStep: Step {
    static let id = StepID("cluster.ready")

    let settings: K3sSettings

    var id: StepID { Self.id }
    var dependencies: [StepID] { [TerraformApplyStep.id, K3sServerStep.id, K3sJoinStep.id] }
    var inputs: String { "\(settings.inputs) ready timeout=\(settings.spec.readyTimeout.formatted)" }
    var hasCheck: Bool { true }

    /// The core deployments (in kube-system) this plan's server runs.
    var coreDeployments: [String] {
        [("coredns", "coredns"), ("metrics-server", "metrics-server"), ("local-storage", "local-path-provisioner")]
            .filter { !settings.spec.disable.contains($0.0) }.map(\.1)
    }

    /// What is not ready yet; empty when everything is.
    private func missing(_ control: K3sNode, planned: [String]) async throws -> [String] {
        let nodes = try await K3sAccess.clusterNodes(on: control)
        var missing: [String] = []
        for name in planned {
            guard let node = nodes.first(where: { $0.name == name }) else { missing.append("\(name): not in the cluster"); continue }
            if !node.isReady { missing.append("\(name): \(node.condition)") }
        }
        let result = try await control.run("k3s kubectl get deployments -n kube-system -o json", timeout: .seconds(30))
        let items = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        for name in coreDeployments {
            guard let item = items.first(where: { ($0["metadata"] as? [String: Any])?["name"] as? String == name }) else {
                missing.append("deployment kube-system/\(name): not found"); continue
            }
            let status = item["status"] as? [String: Any] ?? [:]
            let wanted = (item["spec"] as? [String: Any])?["replicas"] as? Int ?? 1
            let available = status["availableReplicas"] as? Int ?? 0
            if available < wanted { missing.append("deployment kube-system/\(name): \(available)/\(wanted) available") }
        }
        return missing
    }

    private func planned(_ context: StepContext) throws -> [String] {
        try RuntimeAccess.inventory(context.upstream).nodes.map(\.name)
    }

    func check(_ context: StepContext) async throws -> CheckResult {
        let control = try settings.access.controlPlane(context)
        let planned = try planned(context)
        let missing = try await missing(control, planned: planned)
        return missing.isEmpty ? .satisfied(["nodes": .list(planned.map { .string($0) })]) : .unsatisfied(missing.joined(separator: "; "))
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        let control = try settings.access.controlPlane(context)
        let planned = try planned(context)
        let deadline = ContinuousClock.now + settings.spec.readyTimeout
        while true {
            let missing = try await missing(control, planned: planned)
            if missing.isEmpty { break }
            guard ContinuousClock.now < deadline else {
                throw StepFailure("the cluster was not ready within \(settings.spec.readyTimeout.formatted):\n" + missing.map { "  \($0)" }.joined(separator: "\n"))
            }
            try await Task.sleep(for: .seconds(1))
        }
        context.log.write("all \(planned.count) nodes Ready; \(coreDeployments.joined(separator: ", ")) available")
        return ["nodes": .list(planned.map { .string($0) })]
    }
}
