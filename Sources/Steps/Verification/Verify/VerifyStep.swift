import Engine
import Foundation
import Infra
import NodeRuntime
import Transport

/// `verify`: the pipeline works end to end (`PipelineVerifier`'s table). Runs after every change
/// of the services below it; its outputs are the table, and a failed check fails the step with
/// what was seen and where to look next. Its check (used by `status --audit`) is the quick half:
/// the processor is ready, the topics exist and data is being ingested.
///
/// The flow is part of what `up` converges, so the check runs on every `up` (`checksEveryRun`):
/// on an unchanged step it asks Prometheus one question, whether the processor wrote documents of
/// both topics in the last 15 seconds, and keeps the recorded table when it did. When the flow stopped, `up`
/// verifies again after the units below it were checked and repaired, and fails naming what
/// still does not hold.
package struct VerifyStep: Step {
    package static let id = StepID("verify")

    package var id: StepID { Self.id }
    let runtime: ProcessesRuntime
    let access: RuntimeAccess

    /// The step that verifies `runtime`'s pipeline through `access`.
    package init(runtime: ProcessesRuntime, access: RuntimeAccess) {
        self.runtime = runtime
        self.access = access
    }

    package var dependencies: [StepID] {
        [TerraformApplyStep.id, ServiceStep.Kind.processor.id, ServiceStep.Kind.producer.id, ServiceStep.Kind.prometheus.id]
    }
    package var inputs: String { "verify partitions=\(runtime.pipeline.partitions) max_latency=\(runtime.maxLatency.formatted)" }
    package var planKeys: [String: String] {
        runtime.pipeline.planKeys(["partitions"]).merging(["pipeline.max_latency": runtime.maxLatency.formatted]) { $1 }
    }
    package var hasCheck: Bool { true }
    package var checksEveryRun: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(5), maxBackoff: .seconds(10), timeout: .seconds(240)) }

    /// The verifier for the recorded cluster: services reached at the control plane's address.
    func verifier(_ context: StepContext) throws -> PipelineVerifier {
        let inventory = try RuntimeAccess.inventory(context.upstream)
        guard let control = inventory.controlPlane else { throw StepFailure("the inventory has no node; run 'provision up'", retryable: false) }
        return try Self.verifier(runtime: runtime, inventory: inventory, controlPlane: try access.installer(control.name, context))
    }

    /// The verifier for `inventory`; `controlPlane` runs commands on the control plane (topics).
    package static func verifier(runtime: ProcessesRuntime, inventory: ClusterInventory, controlPlane installer: ServiceInstaller) throws -> PipelineVerifier {
        let (control, workers) = try RuntimeAccess.runtimeNodes(inventory)
        let broker = runtime.broker(on: control)
        let processorLog = ServiceControl(unit: runtime.processor(on: control).unit, initSystem: inventory.controlPlane?.initSystem ?? .openrc).logName
        let targets = PipelineVerifier.Targets(
            processor: "http://\(control.address):\(ProcessesRuntime.Port.processor)",
            prometheus: "http://\(control.address):\(ProcessesRuntime.Port.prometheus)",
            workers: workers.map(\.name), nodes: workers.count + 1,
            topics: { try await ProcessesRuntime.topics(broker, on: installer) },
            hints: [
                "processor /health": "provision logs service.processor (\(processorLog) on \(control.name))",
                "processor /ready": "provision logs service.processor; provision logs service.mongodb",
                "topics": "provision logs service.broker",
                "gpu_metrics documents rise": "provision logs service.processor; provision logs service.producer/\(workers.first?.name ?? "worker-1")",
                "token_usage documents rise": "provision logs service.processor",
                "producers seen in /gpu/info": "provision logs service.producer/<worker>",
                "Prometheus scrapes the processor": "provision logs service.prometheus",
                "Prometheus scrapes every node": "provision logs service.node-exporter/<node>",
                "ingest rate": "provision logs service.processor",
                "no critical alert firing": "open Prometheus at http://\(control.address):\(ProcessesRuntime.Port.prometheus)/alerts",
            ])
        var verifier = PipelineVerifier(targets: targets, partitions: runtime.pipeline.partitions)
        verifier.latencyBudget = runtime.maxLatency.seconds
        verifier.sampleGap = runtime.documentSampleGap
        return verifier
    }

    /// The checks as step outputs, and back (the one place that knows the layout).
    static func encode(_ checks: [PipelineVerifier.Check]) -> StepOutputs {
        let data = (try? JSONEncoder().encode(checks)) ?? Data("[]".utf8)
        return ["checks": .string(String(decoding: data, as: UTF8.self)), "passed": .bool(checks.allSatisfy(\.ok))]
    }

    package static func decode(_ outputs: StepOutputs) -> [PipelineVerifier.Check] {
        guard let text = outputs["checks"]?.scalarText else { return [] }
        return (try? JSONDecoder().decode([PipelineVerifier.Check].self, from: Data(text.utf8))) ?? []
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        if let recorded = context.recorded, recorded["passed"] == .bool(true) {
            return try await flowing(context) ? .satisfied(recorded) : .unsatisfied(Self.stopped)
        }
        var quick = try verifier(context)
        quick.timeout = .seconds(10)
        quick.sampleGap = runtime.durableBroker ? runtime.documentSampleGap : .seconds(2)
        let checks = await quick.run()
        let wanted: Set = ["processor /ready", "topics", "gpu_metrics documents rise"]
        if let failed = checks.first(where: { wanted.contains($0.name) && !$0.ok }) {
            return .unsatisfied("\(failed.name): expected \(failed.expected), saw \(failed.seen)")
        }
        return .satisfied(Self.encode(checks))
    }

    /// What an unchanged verify's check says when the flow stopped.
    static let stopped = "no document of one topic or both was written in the last 15 s (Prometheus: processor_written_total); verifying again"

    /// Whether the processor wrote documents of each topic in the last 15 seconds, by Prometheus (one query;
    /// it scrapes every 5 s). Prometheus unreachable counts as not flowing: verify then runs whole.
    func flowing(_ context: StepContext) async throws -> Bool {
        let inventory = try RuntimeAccess.inventory(context.upstream)
        let (control, _) = try RuntimeAccess.runtimeNodes(inventory)
        let prometheus = PrometheusClient(baseURL: "http://\(control.address):\(ProcessesRuntime.Port.prometheus)", timeout: .seconds(5))
        // Per topic: one flowing must not hide the other stopped.
        let flowing = try? await prometheus.instant("count(sum by (topic) (increase(processor_written_total{job=\"processor\"}[15s])) > 0)")
        return (flowing ?? 0) >= 2
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        try Self.outcome(await verifier(context).run { context.log.write($0) }, context)
    }

    /// A verify step's outputs: the table logged, and a failure naming each failed check with what
    /// was seen and where to look when one failed.
    static func outcome(_ checks: [PipelineVerifier.Check], _ context: StepContext) throws -> StepOutputs {
        context.log.write(PipelineVerifier.table(checks))
        let failed = checks.filter { !$0.ok }
        guard failed.isEmpty else {
            let lines = failed.map { "\($0.name): expected \($0.expected), saw \($0.seen)\($0.next.map { "; look at: \($0)" } ?? "")" }
            throw StepFailure("the pipeline does not verify:\n" + lines.joined(separator: "\n"))
        }
        return encode(checks)
    }
}
