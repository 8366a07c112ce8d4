import Engine
import Foundation
import PlanLanguage
import Transport

/// What every K3s step of a plan shares: the plan's `k3s:` section with its files resolved, the
/// join token's value when the plan gives one (never part of any step's inputs), and the access.
package struct K3sSettings: Sendable {
    package let spec: K3sSpec
    /// The plan's name: the kubeconfig's cluster, user and context are named after it.
    let planName: String
    /// The plan's token secret's value; nil when the server generates the token.
    let token: String?
    package let access: K3sAccess
    let install: K3sInstall
    /// The kubeconfig to merge into, resolved (`~` expanded); nil without `merge_kubeconfig`.
    let mergeTarget: URL?
    /// The plan's `pipeline:` settings, written into the deployed manifests.
    package let pipeline: PipelineSpec
    /// The nodes' range (the plan's VPC), written into the `allow-from-nodes` NetworkPolicies.
    let nodeNetwork: IPv4CIDR?

    package init(plan: Plan, spec: K3sSpec, secrets: [String: String], ssh: SSHPool?) {
        self.spec = spec
        planName = plan.name
        token = spec.tokenSecret.flatMap { secrets[$0] }
        access = K3sAccess(ssh: ssh, sandbox: plan.target == .sandbox, maxUnavailable: spec.maxUnavailable)
        install = K3sInstall(airgap: spec.airgap.map { (plan.resolve($0.installScript), plan.resolve($0.binary), $0.images.map(plan.resolve)) },
                             version: spec.version, installScriptSHA256: spec.installScriptSHA256)
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let path = spec.kubeconfigPath.hasPrefix("~/") ? home + spec.kubeconfigPath.dropFirst(1) : spec.kubeconfigPath
        mergeTarget = spec.mergeKubeconfig ? plan.resolve(path) : nil
        pipeline = plan.pipeline ?? PipelineSpec()
        nodeNetwork = plan.cluster?.vpcCIDR
    }

    /// The inputs every K3s step shares (no secret value).
    var inputs: String {
        "k3s \(spec.version) airgap=\(spec.airgap.map { "\($0.installScript) \($0.binary) \($0.images ?? "")" } ?? "none") "
            + "token=\(spec.tokenSecret.map { "secret:\($0)" } ?? "generated")"
            + (spec.installScriptSHA256.map { " installer=sha256:\($0)" } ?? "")
    }
}

extension K3sSettings {
    /// The keys `inputs` (shared by every K3s step) is made of.
    var planKeys: [String: String] { spec.planKeys(["version", "airgap", "token"]) }
}
