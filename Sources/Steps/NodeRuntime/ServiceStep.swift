import Digest
import Engine
import Foundation
import Infra
import PlanLanguage
import Transport

/// `service.<kind>` (on the control plane) or `service.<kind>/<node>` (one per node): one service
/// of `runtime: processes`, run by the node's service manager.
///
/// `apply` installs the unit and its files and starts it (restarting it only when its unit, files
/// or build changed); `check` is: the installed unit is this one, the service manager runs it and
/// its health probe answers. The check runs on every `up`, so a unit that stopped or crashed for
/// good is restarted by the next `up`, and only that unit; an unchanged step's check reads the
/// run's snapshot (`UnitReadings`: one round trip per node for all its units).
/// `teardown` stops and removes the unit.
package struct ServiceStep: Step {
    package enum Kind: String, CaseIterable, Sendable {
        case broker, mongodb, nodeExporter = "node-exporter", alertmanager, prometheus, processor, producer

        /// One per node (node-exporter) or per worker (producer), rather than one on the control plane.
        package var perNode: Bool { self == .nodeExporter || self == .producer }
        /// The id of this kind's step, or of its fan-out.
        package var id: StepID { StepID("service.\(rawValue)") }

        /// What must run first, besides the inventory and ready nodes.
        package var needs: [StepID] {
            switch self {
            case .broker: [SandboxCloudStep.id]  // the object store that keeps the broker's log
            // Prometheus needs nothing running to start (a target that does not answer yet is
            // up 0 until it does; notifications are retried), and it starts scraping only after
            // its target discovery's first update, 5 s after its start: it starts with the first
            // services so that this wait overlaps theirs.
            case .mongodb, .nodeExporter, .alertmanager, .prometheus: []
            case .processor: [Kind.broker.id, Kind.mongodb.id, ArtifactsStep.id]
            case .producer: [Kind.broker.id, ArtifactsStep.id]
            }
        }
    }

    package let id: StepID
    let kind: Kind
    /// The node of a per-node kind; nil for the control plane's.
    let node: String?
    let runtime: ProcessesRuntime
    let access: RuntimeAccess

    package init(_ kind: Kind, node: String? = nil, runtime: ProcessesRuntime, access: RuntimeAccess) {
        self.id = node.map { kind.id.child($0) } ?? kind.id
        self.kind = kind
        self.node = node
        self.runtime = runtime
        self.access = access
    }

    package var dependencies: [StepID] { [TerraformApplyStep.id, NodeReadyStep.id] + kind.needs }
    /// The settings of the pipeline this kind reads; addresses come with the upstream inventory.
    package var inputs: String {
        let p = runtime.pipeline
        let settings: String = switch kind {
        case .broker: "partitions=\(p.partitions)"
        case .processor: "batch=\(p.batchSize) wait=\(p.batchWaitMs) retention=\(p.retentionDays)"
        case .producer: "rate=\(p.rate) gpus=\(p.gpusPerProducer)"
        case .prometheus: "rules=\(SHA256.hex(runtime.rules))"
        case .mongodb, .nodeExporter, .alertmanager: ""
        }
        return "service \(id) \(settings) programs=\(runtime.programs)"
    }
    package var planKeys: [String: String] {
        let names: [String] = switch kind {
        case .broker: ["partitions"]
        case .processor: ["batch_size", "batch_wait_ms", "retention_days"]
        case .producer: ["rate", "gpus_per_producer"]
        case .prometheus, .mongodb, .nodeExporter, .alertmanager: []
        }
        return runtime.pipeline.planKeys(names)
    }
    package var hasCheck: Bool { true }
    package var hasTeardown: Bool { true }
    package var checksEveryRun: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(2), maxBackoff: .seconds(5), timeout: .seconds(180)) }

    /// Only the nodes the service runs on or talks to, and the build it runs: of a per-node
    /// dependency (node.ready, runtime.artifacts) only this service's own node's entry counts, so
    /// adding a worker restarts nothing but Prometheus (which scrapes every node-exporter).
    package func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? {
        let control = (try? RuntimeAccess.inventory(upstream))?.controlPlane?.name ?? ""
        var scoped = RuntimeAccess.scope(upstream) { inventory in
            switch kind {
            case .prometheus: inventory.nodes.map(\.name)
            case .producer: [node ?? "", control]
            case .nodeExporter: [node ?? ""]
            default: [control]
            }
        }
        let own = node ?? control
        for id in scoped.keys {
            let parts = id.rawValue.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] != Kind.nodeExporter.id.rawValue else { continue }
            if parts[1] != own { scoped[id] = nil }
        }
        return scoped
    }

    /// This service, placed on its node from the recorded inventory.
    package func placed(_ upstream: [StepID: StepOutputs]) throws -> PlacedService {
        let inventory = try RuntimeAccess.inventory(upstream)
        let (control, workers) = try RuntimeAccess.runtimeNodes(inventory)
        func this() throws -> RuntimeNode {
            guard let node else { return control }
            guard let entry = inventory.node(named: node) else { throw StepFailure("node \(node) is not in the cluster inventory; run 'provision up'", retryable: false) }
            return try RuntimeAccess.runtimeNode(entry, controlPlane: entry.name == control.name)
        }
        var service: PlacedService
        switch kind {
        case .broker:
            let endpoint = runtime.durableBroker ? SandboxCloudStep.endpoint(in: upstream) : nil
            let storage = endpoint.map { BrokerStorage.objectStore(endpoint: $0, bucket: BrokerStorage.sandboxBucket) }
            service = runtime.broker(on: control, storage: storage ?? .memory)
        case .mongodb: service = runtime.mongo(on: control)
        case .alertmanager: service = runtime.alertmanager(on: control)
        case .prometheus: service = runtime.prometheus(on: control, nodes: [control] + workers)
        case .processor:
            service = runtime.processor(on: control)
            service.revision = ArtifactsStep.digest(of: "processor", on: control.name, in: upstream)
                + ArtifactsStep.digest(of: "librdkafka", on: control.name, in: upstream)
        case .nodeExporter: service = runtime.nodeExporter(on: try this())
        case .producer:
            let worker = try this()
            service = runtime.producer(on: worker, index: workers.firstIndex(of: worker) ?? 0, broker: control)
            service.revision = ArtifactsStep.digest(of: "producer", on: worker.name, in: upstream)
                + ArtifactsStep.digest(of: "librdkafka", on: worker.name, in: upstream)
        }
        return service
    }

    private func outputs(_ service: PlacedService) -> StepOutputs {
        ["node": .string(service.node.name), "unit": .string(service.unit.name), "digest": .string(service.digest)]
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let service = try placed(context.upstream)
        let installer = try access.installer(service.node.name, context)
        // A succeeded step's check reads the run's snapshot; any other waits, through its own
        // command, for what its earlier attempt left running on the node.
        let snapshot = context.recorded != nil
        let stateScript = ServiceInstaller.stateScript(of: service, initSystem: installer.initSystem)
        let state: ServiceInstaller.State
        if snapshot, let output = await reading(stateScript, service, context) {
            state = ServiceInstaller.state(of: service, from: output, initSystem: installer.initSystem)
        } else {
            state = try await installer.state(of: service)
        }
        if let problem = state.problem { return .unsatisfied("\(service.unit.name) on \(service.node.name): \(problem)") }
        if kind == .broker, let mismatch = try await topicProblem(service, context, snapshot: snapshot) { return .unsatisfied(mismatch.description) }
        return .satisfied(outputs(service))
    }

    /// What `command` printed on the service's node in the run's snapshot (`UnitReadings`), or
    /// nil when it must run live.
    private func reading(_ command: String, _ service: PlacedService, _ context: StepContext) async -> String? {
        await access.readings.output(of: command, on: service.node.name) { try batches(context) }
    }

    /// Every node's batch for the snapshot: the state script of each service the plan places
    /// there and the broker's topic list, from this step's view of the inventory (a step whose
    /// own command differs, because its view differs, reads live). On a systemd node the batch's
    /// prelude asks systemd once for all of the node's units; on the broker's, it lists the topics
    /// once for the broker's readiness and the topic check.
    private func batches(_ context: StepContext) throws -> [String: UnitReadings.NodeBatch] {
        let inventory = try RuntimeAccess.inventory(context.upstream)
        let steps = Kind.allCases.filter { !$0.perNode }.map { ServiceStep($0, runtime: runtime, access: access) }
            + inventory.nodes.map { ServiceStep(.nodeExporter, node: $0.name, runtime: runtime, access: access) }
            + inventory.workers.map { ServiceStep(.producer, node: $0.name, runtime: runtime, access: access) }
        var commands: [String: [String]] = [:]
        var units: [String: [String]] = [:]
        var preludes: [String: [String]] = [:]
        for step in steps {
            guard let service = try? step.placed(context.upstream) else { continue }
            let initSystem = inventory.node(named: service.node.name)?.initSystem ?? .openrc
            commands[service.node.name, default: []].append(ServiceInstaller.stateScript(of: service, initSystem: initSystem))
            units[service.node.name, default: []].append(service.unit.name)
            if step.kind == .broker {
                commands[service.node.name, default: []].append(ProcessesRuntime.topicsCommand(service))
                preludes[service.node.name, default: []].append(ProcessesRuntime.topicsPrelude(service))
            }
        }
        var batches: [String: UnitReadings.NodeBatch] = [:]
        for (name, list) in commands {
            guard let node = inventory.node(named: name) else { continue }
            let prelude = (node.initSystem == .systemd ? [ServiceControl.activePrelude(of: units[name] ?? [])] : []) + (preludes[name] ?? [])
            batches[name] = UnitReadings.NodeBatch(runner: try access.reader(node, context),
                                                   batch: CommandBatch(list, prelude: prelude.isEmpty ? nil : prelude.joined(separator: "\n")))
        }
        return batches
    }

    /// Why the broker's topics are not the plan's (a partition count differs), or nil; from the
    /// run's snapshot when `snapshot` and it holds them.
    private func topicProblem(_ service: PlacedService, _ context: StepContext, snapshot: Bool = false) async throws -> TopicMismatch? {
        var listed: [String: Int]?
        if snapshot, let output = await reading(ProcessesRuntime.topicsCommand(service), service, context) {
            listed = ProcessesRuntime.topics(listed: output)
        }
        if listed == nil { listed = try await ProcessesRuntime.topics(service, on: access.installer(service.node.name, context)) }
        let topics = listed ?? [:]
        let wanted = runtime.pipeline.partitions
        return PipelineSpec.topics.lazy.compactMap { name in
            topics[name].flatMap { $0 == wanted ? nil : TopicMismatch(topic: name, partitions: $0, planned: wanted, broker: service) }
        }.first
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        await access.readings.invalidate()
        let service = try placed(context.upstream)
        try await access.installer(service.node.name, context).install(service, timeout: .seconds(90)) { context.log.write($0) }
        if kind == .broker, let mismatch = try await topicProblem(service, context) {
            throw StepFailure(mismatch.description, retryable: false)
        }
        return outputs(service)
    }

    package func teardown(_ context: StepContext) async throws {
        await access.readings.invalidate()
        let service = try placed(context.upstream)
        do {
            try await access.installer(service.node.name, context).remove(service)
            context.log.write("\(service.node.name): stopped and removed \(service.unit.name)")
        } catch let error as SSHError where error.isRetryable {
            // The node is gone (destroyed, or a sandbox host that is not running): nothing runs there.
            context.log.write("\(service.node.name) does not answer (\(error)); nothing to stop there")
        }
    }
}
