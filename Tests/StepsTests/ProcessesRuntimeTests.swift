@testable import App
import Engine
import Foundation
@testable import NodeRuntime
@testable import PlanLanguage
import Testing
@testable import Transport
@testable import Verification

/// `runtime: processes` on real sandbox nodes (OpenRC from the node image): the whole pipeline as
/// services (Tansu, nx-27017, processor, producers, Prometheus with the k8s/ alert rules,
/// Alertmanager, node-exporter), verified end to end by `PipelineVerifier`.
@Suite(.serialized) struct ProcessesRuntimeTests {
    static let build = repositoryRoot.appendingPathComponent(".build/debug")
    static let tools = repositoryRoot.appendingPathComponent(".tools")
    static let rules = repositoryRoot.appendingPathComponent("k8s/base/monitoring/rules/pipeline-rules.yaml")

    /// A runtime whose programs are this build's workloads and the node image's.
    static func runtime(rate: Double = 40) throws -> ProcessesRuntime {
        var pipeline = PipelineSpec()
        pipeline.rate = rate
        pipeline.gpusPerProducer = 2
        return ProcessesRuntime(
            pipeline: pipeline,
            programs: .init(),
            rules: try String(contentsOf: rules, encoding: .utf8))
    }

    static func installer(_ pool: SSHPool, _ endpoint: SSHEndpoint) -> ServiceInstaller {
        ServiceInstaller(pool: pool, endpoint: endpoint)
    }

    @Test func thePipelineRunsAsServicesIsVerifiedAndASecondInstallRestartsNothing() async throws {
        try await withSandboxNodes(image: ServiceManagerTests.image) { nodes in
            let hosts = try await nodes.start(3)
            let pool = SSHPool(store: nodes.store, parallelism: 6)
            let runtimeNodes = hosts.enumerated().map { RuntimeNode(name: $1.node, address: $1.address, isControlPlane: $0 == 0) }
            let control = runtimeNodes[0], workers = Array(runtimeNodes.dropFirst())
            let installers = Dictionary(uniqueKeysWithValues: zip(runtimeNodes.map(\.name), hosts.map { Self.installer(pool, nodes.endpoint($0)) }))
            let log: @Sendable (String) -> Void = { _ in }
            let here = LocalCommandRunner(processes: ProcessSupervisor())
            let runtime = try Self.runtime()

            for node in runtimeNodes {
                let programs = node.isControlPlane ? ["processor"] : ["producer"]
                for program in programs {
                    try await Artifact(local: Self.build.appendingPathComponent(program).path, remote: "/opt/provision/bin/\(program)")
                        .install(with: installers[node.name]!, here: here, log: log)
                }
                try await Artifact(local: Self.tools.appendingPathComponent("lib/librdkafka.so.1").path, remote: "/opt/provision/lib/librdkafka.so.1", mode: 0o644)
                    .install(with: installers[node.name]!, here: here, log: log)
            }
            var services = [runtime.broker(on: control), runtime.mongo(on: control)]
            services += runtimeNodes.map { runtime.nodeExporter(on: $0) }
            services += [runtime.alertmanager(on: control), runtime.prometheus(on: control, nodes: runtimeNodes), runtime.processor(on: control)]
            services += workers.enumerated().map { runtime.producer(on: $1, index: $0, broker: control) }
            for service in services {
                #expect(try await installers[service.node.name]!.install(service, timeout: .seconds(60), log: log), "\(service.unit.name) started")
            }

            let control0 = installers[control.name]!
            let verifier = PipelineVerifier(targets: .init(
                processor: "http://\(control.address):\(ProcessesRuntime.Port.processor)",
                prometheus: "http://\(control.address):\(ProcessesRuntime.Port.prometheus)",
                workers: workers.map(\.name), nodes: runtimeNodes.count,
                topics: { try await ProcessesRuntime.topics(runtime.broker(on: control), on: control0) }), partitions: 3)
            let checks = await verifier.run(log: { print("verify: \($0)") })
            let failed = checks.filter { !$0.ok }
            #expect(failed.isEmpty, "verify: \(failed.map { "\($0.name): expected \($0.expected), saw \($0.seen)" })")

            // Nothing changed: nothing restarts, every program keeps its PID.
            var pids: [String: Int] = [:]
            for service in services { pids["\(service.node.name)/\(service.unit.name)"] = try await installers[service.node.name]!.pid(of: service) }
            #expect(pids.values.count == services.count)
            for service in services {
                #expect(try await installers[service.node.name]!.install(service, timeout: .seconds(30), log: log) == false, "\(service.unit.name) left alone")
                #expect(try await installers[service.node.name]!.pid(of: service) == pids["\(service.node.name)/\(service.unit.name)"])
            }

            // A changed rate restarts the producers only.
            let faster = try Self.runtime(rate: 80)
            for (index, worker) in workers.enumerated() {
                #expect(try await installers[worker.name]!.install(faster.producer(on: worker, index: index, broker: control), timeout: .seconds(30), log: log))
            }
            #expect(try await control0.pid(of: runtime.processor(on: control)) == pids["\(control.name)/pipeline-processor"])

            for service in services.reversed() { try await installers[service.node.name]!.remove(service) }
            for (name, installer) in installers {
                let left = try await installer.run("pgrep -a -f '[t]ansu|[n]x-27017|[p]rometheus|/opt/provision/bin/[p]' || true", .seconds(20)).stdout
                #expect(left.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(name): no service process left: \(left)")
            }
            await pool.closeAll()
        }
    }
}
