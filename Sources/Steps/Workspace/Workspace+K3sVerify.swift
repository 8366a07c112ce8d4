import Engine
import Foundation

extension Workspace {
    /// verify on a K3s cluster: the processor's and Prometheus's Services reached through local
    /// ports forwarded over SSH to the control plane (`SSHPortForward`), the topics as the broker
    /// describes them (`kubectl exec kafka-0`) against the kafka-topics ConfigMap, every recorded
    /// node's exporter scraped by kube-prometheus-stack, and the processor's log lines in Loki (shipped by Alloy).
    func verifyK3sPipeline(timeout: Duration, log: (@Sendable (String) -> Void)?) async throws -> [PipelineVerifier.Check] {
        let cluster = try recordedK3sCluster(for: "verify checks the pipeline")
        let pool = SSHPool(store: cluster.store, parallelism: 2)
        var forwards: [SSHPortForward] = []
        func closeAll() async {
            forwards.forEach { $0.close() }
            await pool.closeAll()
        }
        do {
            let processor = try await serviceAddress(namespace: K3sPipeline.processor.namespace, name: K3sPipeline.processor.name,
                                                     port: K3sPipeline.processor.port, cluster: cluster, pool: pool)
            let prometheus = try await serviceAddress(namespace: ForwardTarget.namespace, name: ForwardTarget.prometheus.serviceName!,
                                                      port: ForwardTarget.prometheus.servicePort, cluster: cluster, pool: pool)
            let configMap = try await runOnControlPlane("k3s kubectl get configmap -n \(K3sPipeline.topicsConfigMap.namespace) \(K3sPipeline.topicsConfigMap.name) -o json",
                                                        cluster: cluster, pool: pool)
            let wanted = K3sPipeline.topics(fromConfigMapJSON: configMap.standardOutput)
            guard configMap.succeeded, !wanted.isEmpty else {
                throw PipelineUnavailable(description: "the cluster of plan '\(plan.name)' has no topics in ConfigMap "
                    + "\(K3sPipeline.topicsConfigMap.namespace)/\(K3sPipeline.topicsConfigMap.name); run 'provision up' (with k3s.deploy)")
            }
            let loki = try await serviceAddress(namespace: K3sPipeline.loki.namespace, name: K3sPipeline.loki.name,
                                                port: K3sPipeline.loki.port, cluster: cluster, pool: pool)
            let pins = HostKeyPins(store: cluster.store)
            for (host, port) in [processor, prometheus, loki] {
                forwards.append(try await SSHPortForward.open(endpoint: cluster.endpoint, to: host, port: port, pins: pins))
            }
            // Producers run as pods of an HPA-scaled Deployment: each reports its pod's name.
            let producers = K3sPipeline.runningPods(fromJSON: try await runOnControlPlane(K3sPipeline.producerPods, cluster: cluster, pool: pool).standardOutput)
            let control = cluster.control.name
            let run = { @Sendable (command: String) async throws -> CommandResult in try await self.runOnControlPlane(command, cluster: cluster, pool: pool) }
            var targets = PipelineVerifier.Targets(
                processor: "http://127.0.0.1:\(forwards[0].localPort)", prometheus: "http://127.0.0.1:\(forwards[1].localPort)",
                workers: producers, nodes: cluster.inventory.nodes.count,
                topics: {
                    let result = try await run(K3sPipeline.describeTopics)
                    guard result.succeeded else { throw PipelineUnavailable(description: "kafka-topics.sh --describe failed: \(String(result.stderr.suffix(300)).trimmed)") }
                    return K3sPipeline.topics(fromDescribe: result.stdout)
                },
                hints: [
                    "processor /health": "k3s kubectl logs -n app deploy/processor (on \(control))",
                    "processor /ready": "k3s kubectl logs -n app deploy/processor; k3s kubectl logs -n platform mongodb-0 (on \(control))",
                    "topics": "k3s kubectl get jobs -n platform, then k3s kubectl logs -n platform job/<the kafka-topics-… job>; k3s kubectl logs -n platform kafka-0 (on \(control))",
                    "gpu_metrics documents rise": "k3s kubectl logs -n app deploy/processor; k3s kubectl logs -n app deploy/producer (on \(control))",
                    "token_usage documents rise": "k3s kubectl logs -n app deploy/processor (on \(control))",
                    "producers seen in /gpu/info": "k3s kubectl get pods -n app -o wide (on \(control))",
                    "Prometheus scrapes the processor": "provision port-forward prometheus, then its /targets page",
                    "Prometheus scrapes every node": "provision port-forward prometheus, then its /targets page (job \(K3sPipeline.nodeExporterJob))",
                    "ingest rate": "k3s kubectl logs -n app deploy/processor (on \(control))",
                    "no alert firing": "provision port-forward prometheus, then its /alerts page",
                    "Loki has the processor's logs": "k3s kubectl logs -n monitoring -l app.kubernetes.io/name=alloy; k3s kubectl logs -n monitoring loki-0 (on \(control))",
                ])
            targets.nodeJob = K3sPipeline.nodeExporterJob
            targets.loki = "http://127.0.0.1:\(forwards[2].localPort)"
            targets.partitionsByTopic = wanted
            var verifier = PipelineVerifier(targets: targets, partitions: wanted.values.max() ?? 0)
            verifier.timeout = timeout
            let checks = await verifier.run(log: log)
            await closeAll()
            return checks
        } catch {
            await closeAll()
            throw error
        }
    }
}
