import Engine
import Infra
import Kube
import PlanLanguage
import Transport
import Verification

/// `runtime: k3s`: K3s on the machines a cluster target made ready.
///
/// ```
/// node.ready ─► k3s.server ─► k3s.join/<worker> (parallel) ─► cluster.ready ─► kubeconfig
///                                                              └─► monitoring ─► platform ─► workloads ─► verify
///                                                                  (k3s.deploy; monitoring with k3s.monitoring; verify with
///                                                                   monitoring and k3s.verify: K3sVerifyStep)
/// ```
package enum K3sFlow {
    /// The K3s steps of `plan`.
    /// - Parameter secrets: resolved secret values: the join token's, when the plan names one.
    static func nodes(_ plan: Plan, secrets: [String: String], ssh: SSHPool?) -> [StepGraph.Node] {
        guard plan.runtime == .k3s, let spec = plan.k3s else { return [] }
        let settings = K3sSettings(plan: plan, spec: spec, secrets: secrets, ssh: ssh)
        let monitoring: [StepGraph.Node] = spec.deploy && spec.monitoring
            ? [.step(MonitoringStep(settings: settings, tree: plan.resolve(spec.manifests)))]
            : []
        let deploy: [StepGraph.Node] = spec.deploy
            ? [.step(DeployStep(part: .platform, settings: settings, tree: plan.resolve(spec.manifests), after: monitoring.isEmpty ? [] : [MonitoringStep.id])),
               .step(DeployStep(part: .workloads, settings: settings, tree: plan.resolve(spec.manifests)))]
            : []
        let verify: [StepGraph.Node] = spec.deploy && spec.monitoring && spec.verify ? [.step(K3sVerifyStep(settings: settings))] : []
        return [
            .step(K3sServerStep(settings: settings)),
            .fanOut(FanOut(id: K3sJoinStep.id, source: TerraformApplyStep.id, output: ClusterInventory.workerNamesOutput,
                           dependencies: [NodeReadyStep.id, K3sServerStep.id]) { worker in
                K3sJoinStep(worker: worker, settings: settings)
            }),
            .step(ClusterReadyStep(settings: settings)),
            .step(KubeconfigStep(settings: settings)),
        ] + monitoring + deploy + verify
    }
}
