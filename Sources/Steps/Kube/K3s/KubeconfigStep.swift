import Engine
import Foundation
import Infra
import NodeRuntime

/// `kubeconfig`: K3s's /etc/rancher/k3s/k3s.yaml from the control plane, with `server` rewritten to
/// the address this machine reaches the API at and the cluster, user and context renamed from
/// `default` to the plan's name, written to `state/<plan>/kubeconfig` (0600). With
/// `k3s.api_access: forward` the server is `https://127.0.0.1:<k3s.api_local_port>` instead (K3s's
/// serving certificate names 127.0.0.1), which `provision port-forward api` holds open. With
/// `k3s.merge_kubeconfig` it is also merged into `k3s.kubeconfig` (default ~/.kube/config) under
/// that name, after a backup, leaving every other entry as it was; teardown removes only ours.
package struct KubeconfigStep: Step {
    package static let id = StepID("kubeconfig")
    /// Where K3s writes its admin kubeconfig.
    static let source = "/etc/rancher/k3s/k3s.yaml"

    let settings: K3sSettings

    /// The step for these K3s settings.
    package init(settings: K3sSettings) {
        self.settings = settings
    }

    package var id: StepID { Self.id }
    package var dependencies: [StepID] { [TerraformApplyStep.id, K3sServerStep.id, ClusterReadyStep.id] }
    package var inputs: String {
        "\(settings.inputs) kubeconfig merge=\(settings.mergeTarget?.path ?? "no")"
            + (settings.spec.apiAccess == .forward ? " api=forward:\(settings.spec.apiLocalPort)" : "")
    }
    package var planKeys: [String: String] {
        settings.planKeys.merging(settings.spec.planKeys(["merge_kubeconfig", "kubeconfig", "api_access", "api_local_port"])) { $1 }
    }
    package var hasCheck: Bool { true }
    package var hasTeardown: Bool { true }

    /// The control plane and the server: a new worker (and so a new cluster.ready) changes nothing here.
    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        RuntimeAccess.scope(upstream) { inventory in [inventory.controlPlane?.name ?? ""] }.filter { id, _ in id != ClusterReadyStep.id }
    }

    /// The server of `api_access: forward`: the local end of `provision port-forward api`.
    static func forwardedServer(port: Int) -> String { "https://127.0.0.1:\(port)" }

    /// `state/<plan>/kubeconfig`.
    package static func path(_ stateDirectory: URL) -> URL { stateDirectory.appendingPathComponent("kubeconfig") }

    /// The API server as this machine reaches it: through the forwarded local port, or at the
    /// control plane's public address.
    private func server(_ context: StepContext) throws -> String {
        if settings.spec.apiAccess == .forward { return Self.forwardedServer(port: settings.spec.apiLocalPort) }
        guard let control = try RuntimeAccess.inventory(context.upstream).controlPlane else {
            throw StepFailure("the inventory has no node; run 'provision up'", retryable: false)
        }
        return "https://\(try settings.access.reachableAddress(control)):6443"
    }

    private func outputs(_ context: StepContext, server: String) -> StepOutputs {
        var outputs: StepOutputs = ["path": .string(Self.path(context.stateDirectory).path), "context": .string(settings.planName), "server": .string(server)]
        if let target = settings.mergeTarget { outputs["merged_into"] = .string(target.path) }
        return outputs
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let server = try server(context)
        let own = (try? String(contentsOf: Self.path(context.stateDirectory), encoding: .utf8)) ?? ""
        guard Kubeconfig.has(own, context: settings.planName, server: server) else {
            return .unsatisfied("\(Self.path(context.stateDirectory).path) has no context \(settings.planName) for \(server)")
        }
        if let target = settings.mergeTarget {
            let merged = (try? String(contentsOf: target, encoding: .utf8)) ?? ""
            guard Kubeconfig.has(merged, context: settings.planName, server: server) else {
                return .unsatisfied("\(target.path) has no context \(settings.planName) for \(server)")
            }
        }
        return .satisfied(outputs(context, server: server))
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let control = try settings.access.controlPlane(context)
        let server = try server(context)
        let original = try await control.must("cat \(Self.source)", "reading \(Self.source)", timeout: .seconds(30)).stdout
        let ours: String
        do {
            ours = try Kubeconfig.rename(original, to: settings.planName, server: server)
        } catch {
            throw StepFailure("\(Self.source) on \(control.name) is not a kubeconfig K3s writes: \(error)", retryable: false)
        }
        let path = Self.path(context.stateDirectory)
        try Kubeconfig.write(ours, to: path)
        context.log.write("wrote \(path.path) (0600): context \(settings.planName), server \(server)")
        if let target = settings.mergeTarget {
            let existing = FileManager.default.contents(atPath: target.path)
            if let existing {
                let backup = target.appendingPathExtension("provision-backup")
                try Kubeconfig.write(String(decoding: existing, as: UTF8.self), to: backup)
                context.log.write("backed up \(target.path) to \(backup.path)")
            }
            let merged = try Kubeconfig.merge(ours, named: settings.planName, into: existing.map { String(decoding: $0, as: UTF8.self) } ?? "")
            try Kubeconfig.write(merged, to: target)
            context.log.write("merged context \(settings.planName) into \(target.path); other entries untouched")
        }
        return outputs(context, server: server)
    }

    package func teardown(_ context: StepContext) async throws {
        if let target = settings.mergeTarget, let existing = FileManager.default.contents(atPath: target.path) {
            try Kubeconfig.write(try Kubeconfig.remove(named: settings.planName, from: String(decoding: existing, as: UTF8.self)), to: target)
            context.log.write("removed context \(settings.planName) from \(target.path)")
        }
        try? FileManager.default.removeItem(at: Self.path(context.stateDirectory))
    }
}
