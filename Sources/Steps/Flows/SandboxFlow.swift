import Engine
import Infra
import NodeRuntime
import PlanLanguage
import Transport
import Verification

/// `target: sandbox`: the sandbox's EC2 API (moto), then the cluster steps against it, with one
/// SSH host per instance on a loopback address; then the plan's runtime (`processes`, or `k3s`
/// with the airgap files the plan names, see `K3sFlow`).
///
/// ```
/// sandbox.cloud ─┐
/// ssh.key ───────┴─► terraform.apply ─► node.ready/<node>
/// ```
package enum SandboxFlow {
    /// The built-in steps of a sandbox plan.
    static func nodes(_ plan: Plan, secrets: [String: String], ssh: SSHPool?) -> [StepGraph.Node] {
        guard let cluster = plan.cluster else { return [] }
        let image = plan.sandbox.map { plan.resolve($0.nodeImage) }
        let machines = (image.map { [.step(SandboxCloudStep(nodeImage: $0))] } ?? []) + Flow.clusterNodes(plan, cluster: cluster, nodeImage: image, ssh: ssh)
        if plan.runtime == .k3s { return machines + K3sFlow.nodes(plan, secrets: secrets, ssh: ssh) }
        guard plan.runtime == .processes, let sandbox = plan.sandbox else { return machines }
        return machines + processes(plan, sandbox: sandbox, ssh: ssh)
    }

    /// The services of `runtime: processes` for this plan (its pipeline settings, the k8s/ rules).
    package static func runtime(_ plan: Plan, sandbox: SandboxSpec) -> ProcessesRuntime {
        let rules = (try? String(contentsOf: plan.resolve(sandbox.rules), encoding: .utf8)) ?? ""
        var runtime = ProcessesRuntime(pipeline: plan.pipeline ?? PipelineSpec(), programs: .init(), rules: rules)
        runtime.durableBroker = sandbox.durableBroker
        return runtime
    }

    /// `runtime: processes`: the pipeline as services of the nodes' service manager.
    ///
    /// ```
    /// node.ready ─► runtime.artifacts/<node> ──────────────┐
    ///          ├──► service.broker ──┬──────────────────────┴► service.processor ─┐
    ///          ├──► service.mongodb ─┘      service.producer/<worker> ◄─ broker,  │
    ///          ├──► service.node-exporter/<node>             artifacts            ├─► verify
    ///          ├──► service.alertmanager                                          │
    ///          └──► service.prometheus ───────────────────────────────────────────┘
    /// ```
    static func processes(_ plan: Plan, sandbox: SandboxSpec, ssh: SSHPool?) -> [StepGraph.Node] {
        let runtime = runtime(plan, sandbox: sandbox)
        let access = RuntimeAccess(ssh: ssh)
        let workloads = plan.resolve(sandbox.workloads), librdkafka = plan.resolve(sandbox.librdkafka)
        func perNode(_ kind: ServiceStep.Kind, over output: String) -> StepGraph.Node {
            .fanOut(FanOut(id: kind.id, source: TerraformApplyStep.id, output: output, dependencies: [NodeReadyStep.id] + kind.needs) { node in
                ServiceStep(kind, node: node, runtime: runtime, access: access)
            })
        }
        return [
            .fanOut(FanOut(id: ArtifactsStep.id, source: TerraformApplyStep.id, output: ClusterInventory.nodeNamesOutput,
                           dependencies: [NodeReadyStep.id]) { node in
                ArtifactsStep(node: node, workloads: workloads, librdkafka: librdkafka, programs: runtime.programs, access: access)
            }),
            // Prometheus first of the services: with the plan's parallelism used up by this wave,
            // its 5 s before the first scrape begin as early as they can.
            .step(ServiceStep(.prometheus, runtime: runtime, access: access)),
            .step(ServiceStep(.broker, runtime: runtime, access: access)),
            .step(ServiceStep(.mongodb, runtime: runtime, access: access)),
            perNode(.nodeExporter, over: ClusterInventory.nodeNamesOutput),
            .step(ServiceStep(.alertmanager, runtime: runtime, access: access)),
            .step(ServiceStep(.processor, runtime: runtime, access: access)),
            perNode(.producer, over: ClusterInventory.workerNamesOutput),
            .step(VerifyStep(runtime: runtime, access: access)),
        ]
    }
}
