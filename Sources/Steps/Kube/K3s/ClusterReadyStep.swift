import Engine
import Foundation
import Infra
import NodeRuntime

/// `cluster.ready`: every planned node Ready in the cluster, and the core deployments K3s ships
/// (coredns, metrics-server, local-path-provisioner, less what `k3s.disable` removes) available,
/// within `k3s.ready_timeout`, polled until then (an API error on the way is retried, and named
/// when the deadline passes with the API still failing). The error lists each missing or NotReady node with its Ready
/// condition's reason and message, and each unavailable deployment.
package struct ClusterReadyStep: Step {
    package static let id = StepID("cluster.ready")

    let settings: K3sSettings

    /// The step for these K3s settings.
    package init(settings: K3sSettings) {
        self.settings = settings
    }

    package var id: StepID { Self.id }
    package var dependencies: [StepID] { [TerraformApplyStep.id, K3sServerStep.id, K3sJoinStep.id] }
    package var inputs: String { "\(settings.inputs) ready timeout=\(settings.spec.readyTimeout.formatted)" }
    package var planKeys: [String: String] { settings.planKeys.merging(settings.spec.planKeys(["ready_timeout"])) { $1 } }
    package var hasCheck: Bool { true }

    /// The core deployments (in kube-system) this plan's server runs.
    var coreDeployments: [String] {
        [("coredns", "coredns"), ("metrics-server", "metrics-server"), ("local-storage", "local-path-provisioner")]
            .filter { !settings.spec.disable.contains($0.0) }.map(\.1)
    }

    /// What is not ready yet; empty when everything is. Transient API errors are retried until
    /// `deadline`; an API that keeps failing throws the last error.
    private func missing(_ control: K3sNode, planned: [String], until deadline: ContinuousClock.Instant? = nil) async throws -> [String] {
        let nodes = try await K3sAccess.clusterNodes(on: control, until: deadline)
        var missing: [String] = []
        for name in planned {
            guard let node = nodes.first(where: { $0.name == name }) else { missing.append("\(name): not in the cluster"); continue }
            if !node.isReady { missing.append("\(name): \(node.condition)") }
        }
        let kube = control.kube(until: deadline)
        let result = try await kube.get(["deployments"], namespace: "kube-system")
        guard result.succeeded else { throw kube.failure(Kubectl.shown("get deployments -n kube-system"), result) }
        let items = (try? JSONDecoder().decode(DeploymentList.self, from: Data(result.stdout.utf8)))?.items ?? []
        for name in coreDeployments {
            guard let item = items.first(where: { $0.metadata.name == name }) else {
                missing.append("deployment kube-system/\(name): not found"); continue
            }
            let wanted = item.spec?.replicas ?? 1
            let available = item.status?.availableReplicas ?? 0
            if available < wanted { missing.append("deployment kube-system/\(name): \(available)/\(wanted) available") }
        }
        return missing
    }

    /// The fields of a `DeploymentList` this step reads.
    private struct DeploymentList: Decodable {
        struct Item: Decodable {
            struct Metadata: Decodable { var name: String }
            struct Spec: Decodable { var replicas: Int? }
            struct Status: Decodable { var availableReplicas: Int? }
            var metadata: Metadata
            var spec: Spec?
            var status: Status?
        }
        var items: [Item]
    }

    private func planned(_ context: StepContext) throws -> [String] {
        try RuntimeAccess.inventory(context.upstream).nodes.map(\.name)
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let control = try settings.access.controlPlane(context)
        let planned = try planned(context)
        let missing = try await missing(control, planned: planned)
        return missing.isEmpty ? .satisfied(["nodes": .list(planned.map { .string($0) })]) : .unsatisfied(missing.joined(separator: "; "))
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let control = try settings.access.controlPlane(context)
        let planned = try planned(context)
        let deadline = ContinuousClock.now + settings.spec.readyTimeout
        // Polls until the deadline: an API error (the server restarting, its etcd electing a
        // leader) is one more reason to look again, and the last one is named when time runs out.
        var missing: [String] = []
        var apiError: String?
        while true {
            do {
                missing = try await self.missing(control, planned: planned, until: deadline)
                apiError = nil
                if missing.isEmpty { break }
            } catch let failure as StepFailure {
                apiError = failure.message
            }
            guard ContinuousClock.now < deadline else {
                if let apiError {
                    throw StepFailure("the cluster's readiness could not be read within \(settings.spec.readyTimeout.formatted) (k3s.ready_timeout): \(apiError)")
                }
                throw StepFailure("the cluster was not ready within \(settings.spec.readyTimeout.formatted):\n" + missing.map { "  \($0)" }.joined(separator: "\n"))
            }
            try await Task.sleep(for: .seconds(1))
        }
        context.log.write("all \(planned.count) nodes Ready; \(coreDeployments.joined(separator: ", ")) available")
        return ["nodes": .list(planned.map { .string($0) })]
    }
}
