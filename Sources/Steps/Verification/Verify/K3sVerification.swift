import Engine
import Foundation
import Kube
import PlanLanguage
import Transport

/// `PipelineVerifier` on a K3s cluster, shared by `provision verify` and the `verify` step: the
/// processor's, Prometheus's and Loki's Services reached through local ports forwarded over SSH
/// to the control plane (`SSHPortForward`: no Kubernetes client here, nothing exposed), the topics as the
/// broker describes them (`kafka-topics.sh` in `kafka-0`) against the kafka-topics ConfigMap, the producers
/// as their running pods, every node's exporter scraped by kube-prometheus-stack.
package struct K3sVerification: Sendable {
    /// The control plane's SSH endpoint and its pinned host key.
    let endpoint: SSHEndpoint
    let pins: HostKeyPins
    /// The control plane, where the cluster is asked (as root).
    let controlPlane: K3sNode
    /// Every node of the cluster.
    let nodes: Int
    /// The plan's `pipeline.max_latency`: the end-to-end latency p50 and p99 must stay under it
    /// (nil: `PipelineSpec.defaultMaxLatency`).
    let maxLatency: Duration?

    /// A verification of the cluster behind `controlPlane` (`nodes` expected Ready), reached at `endpoint`.
    package init(endpoint: SSHEndpoint, pins: HostKeyPins, controlPlane: K3sNode, nodes: Int, maxLatency: Duration?) {
        self.endpoint = endpoint
        self.pins = pins
        self.controlPlane = controlPlane
        self.nodes = nodes
        self.maxLatency = maxLatency
    }

    /// The cluster's client, trying again after transient API errors for up to 30 s: an API server
    /// that fails a share of calls does not fail verify.
    private var kube: Kubectl { controlPlane.kube(until: .now + .seconds(30)) }

    /// The control plane's name (for hints).
    private var control: String { controlPlane.name }

    /// The checks; failed checks say where to look next.
    /// - Throws: `PipelineUnavailable` when a Service or the topics ConfigMap is missing.
    package func checks(timeout: Duration, log: (@Sendable (String) -> Void)?) async throws -> [PipelineVerifier.Check] {
        let processor = try await serviceAddress(K3sPipeline.processor)
        let prometheus = try await serviceAddress((ForwardTarget.namespace, ForwardTarget.prometheus.serviceName!, ForwardTarget.prometheus.servicePort))
        let loki = try await serviceAddress(K3sPipeline.loki)
        let configMap = try await kube.get(["configmap/\(K3sPipeline.topicsConfigMap.name)"], namespace: K3sPipeline.topicsConfigMap.namespace)
        let wanted = K3sPipeline.topics(fromConfigMapJSON: configMap.standardOutput)
        guard configMap.succeeded, !wanted.isEmpty else {
            throw PipelineUnavailable(description: "the cluster has no topics in ConfigMap "
                + "\(K3sPipeline.topicsConfigMap.namespace)/\(K3sPipeline.topicsConfigMap.name); run 'provision up' (with k3s.deploy)")
        }
        // Producers run as pods of an HPA-scaled Deployment: each reports its pod's name.
        let producers = K3sPipeline.runningPods(fromJSON: try await kube.get(["pods"], namespace: K3sPipeline.producers.namespace,
                                                                                 selector: K3sPipeline.producers.selector).standardOutput)

        var forwards: [SSHPortForward] = []
        func closeAll() async { for forward in forwards { await forward.shutDown() } }
        do {
            for (host, port) in [processor, prometheus, loki] {
                forwards.append(try await SSHPortForward.open(endpoint: endpoint, to: host, port: port, pins: pins))
            }
        } catch {
            await closeAll()
            throw error
        }
        let verification = self
        var targets = PipelineVerifier.Targets(
            processor: "http://127.0.0.1:\(forwards[0].localPort)", prometheus: "http://127.0.0.1:\(forwards[1].localPort)",
            workers: producers, nodes: nodes,
            topics: {
                let broker = K3sPipeline.broker
                let result = try await verification.kube.exec(broker.pod, namespace: broker.namespace, broker.describeTopics)
                guard result.succeeded else { throw PipelineUnavailable(description: "kafka-topics.sh --describe failed: \(String(result.stderr.suffix(300)).trimmed)") }
                return K3sPipeline.topics(fromDescribe: result.stdout)
            },
            hints: hints)
        targets.nodeJob = K3sPipeline.nodeExporterJob
        targets.partitionsByTopic = wanted
        targets.loki = "http://127.0.0.1:\(forwards[2].localPort)"
        var verifier = PipelineVerifier(targets: targets, partitions: wanted.values.max() ?? 0)
        verifier.timeout = timeout
        verifier.latencyBudget = (maxLatency ?? PipelineSpec.defaultMaxLatency).seconds
        let checks = await verifier.run(log: log)
        await closeAll()
        return checks
    }

    /// Where to look when a check fails, by check.
    private var hints: [String: String] {
        [
            "processor /health": "\(Kubectl.shown("logs -n app deploy/processor")) on \(control)",
            "processor /ready": "\(Kubectl.shown("logs -n app deploy/processor")), \(Kubectl.shown("logs -n platform mongodb-0")) on \(control)",
            "topics": "\(Kubectl.shown("get jobs -n platform")), then \(Kubectl.shown("logs -n platform job/<the kafka-topics-… job>")); \(Kubectl.shown("logs -n platform kafka-0")) on \(control)",
            "gpu_metrics documents rise": "\(Kubectl.shown("logs -n app deploy/processor")), \(Kubectl.shown("logs -n app deploy/producer")) on \(control)",
            "token_usage documents rise": "\(Kubectl.shown("logs -n app deploy/processor")) on \(control)",
            "producers seen in /gpu/info": "\(Kubectl.shown("get pods -n app -o wide")) on \(control)",
            "Prometheus scrapes the processor": "provision port-forward prometheus, then its /targets page",
            "Prometheus scrapes every node": "provision port-forward prometheus, then its /targets page (job \(K3sPipeline.nodeExporterJob))",
            "ingest rate": "\(Kubectl.shown("logs -n app deploy/processor")) on \(control)",
            "no critical alert firing": "provision port-forward prometheus, then its /alerts page",
            "Loki has the processor's logs": "\(Kubectl.shown("logs -n monitoring -l app.kubernetes.io/name=alloy")), \(Kubectl.shown("logs -n monitoring loki-0")) on \(control)",
        ]
    }

    /// The cluster address of a Service (its ClusterIP, as the control plane's API reports it).
    package func serviceAddress(_ service: (namespace: String, name: String, port: Int)) async throws -> (host: String, port: Int) {
        let result = try await kube.get(["service/\(service.name)"], namespace: service.namespace)
        guard result.succeeded else {
            if result.stderr.contains("NotFound") || result.stderr.contains("not found") {
                throw PipelineUnavailable(description: "the cluster has no Service \(service.namespace)/\(service.name); "
                    + "run 'provision up' (with k3s.deploy, it deploys the k8s/ tree)")
            }
            throw PipelineUnavailable(description: "\(Kubectl.shown("get svc")) on \(control) failed (\(result.summary)): \(String(result.stderr.suffix(400)).trimmed); "
                + "is the cluster up? 'provision status' says")
        }
        return try ForwardTarget.serviceAddress(result.standardOutput, namespace: service.namespace, name: service.name, port: service.port)
    }
}
