import Engine
import Foundation
import JSON
import PlanLanguage

/// `runtime: processes`: the pipeline as services of each node's service manager (OpenRC in the
/// sandbox), the way K3s would run it as pods. Stand-ins, named: Tansu for Kafka, nx-27017 for
/// MongoDB, OpenRC's supervise-daemon for the kubelet. Grafana and Loki cannot be installed on this
/// machine, so this runtime has none.
///
/// ```
/// control plane: broker (Tansu) · mongodb (nx-27017) · processor · prometheus · alertmanager · node-exporter
/// each worker:   producer · node-exporter
/// ```
public struct ProcessesRuntime: Sendable {
    /// Programs a node runs, as paths on the node.
    public struct Programs: Sendable, Equatable {
        /// Uploaded by `runtime.artifacts/<node>` (release builds and the librdkafka they load).
        public var processor = "/opt/provision/bin/processor"
        public var producer = "/opt/provision/bin/producer"
        public var libraries = "/opt/provision/lib"
        /// From the node image (scripts/bootstrap builds the sandbox's).
        public var tansu = "/usr/local/bin/tansu"
        public var mongo = "/opt/nx-27017/bin/nx-27017"
        public var prometheus = "/usr/bin/prometheus"
        public var alertmanager = "/usr/bin/prometheus-alertmanager"
        public var nodeExporter = "/usr/bin/prometheus-node-exporter"

        public init() {}
    }

    /// Ports, on each node's own address.
    public enum Port {
        public static let broker = 9092
        public static let mongo = 27017
        public static let processor = 8080
        public static let prometheus = 9090
        public static let alertmanager = 9093
        public static let nodeExporter = 9100
    }

    public var pipeline: PipelineSpec
    public var programs: Programs
    /// The alert rules (the PrometheusRule groups of k8s/, rendered as a rules file).
    public var rules: String
    /// The broker keeps its log in an object store (`BrokerStorage.objectStore`), which charges per
    /// request: producers batch longer and the processor asks for fuller fetches.
    public var durableBroker = false

    /// How long producers batch (linger.ms) with the durable broker. Tansu on S3 writes an object
    /// per produce request and partition and lists a partition's objects on every fetch; moto
    /// renders every key of a listing, so its cost grows with the log (docs/self-healing.md).
    static let durableLinger: Duration = .seconds(3)

    /// `verify`'s end-to-end latency limit: the plan's `pipeline.max_latency`, else 30 s with the
    /// durable broker (its batching alone adds up to 5 s, and the latency histogram's buckets
    /// above 5 s end at 10 and 30), else 5 s.
    public var maxLatency: Duration {
        pipeline.maxLatency ?? (durableBroker ? .seconds(30) : PipelineSpec.defaultMaxLatency)
    }

    /// How long verify waits for the document counts to rise: 5 s, 10 s with the durable broker
    /// (its producers send every 3 s, so a topic's documents arrive in bursts).
    public var documentSampleGap: Duration { durableBroker ? .seconds(10) : .seconds(5) }

    public init(pipeline: PipelineSpec, programs: Programs, rules: String) {
        self.pipeline = pipeline
        self.programs = programs
        self.rules = rules
    }

    static let config = "/etc/provision"
    /// Where each producer keeps what it produced and what the broker acknowledged, per run of the
    /// program (JSON: `{"node", "runs": [{"run", "produced", "acknowledged", "failed", "ended"}]}`).
    public static let producerState = "/var/lib/provision/producer/state.json"
    static let data = "/var/lib/provision"

    // MARK: Control plane

    /// The Kafka-compatible broker, with the pipeline's topics created explicitly (with the plan's
    /// partitions; no client may create one). Its log lives in `storage`: in an object store it
    /// survives the broker's restart and the node's reboot.
    public func broker(on node: RuntimeNode, storage: BrokerStorage = .memory) -> PlacedService {
        let url = "tcp://\(node.address):\(Port.broker)"
        let topics = PipelineSpec.topics.map { topic in
            "\(programs.tansu) topic list --broker \(url) | grep -q '\"name\":\"\(topic)\"' || \(programs.tansu) topic create \(topic) --partitions \(pipeline.partitions) --broker \(url)"
        }.joined(separator: " && ")
        var service = PlacedService(
            unit: ServiceUnit(name: "pipeline-broker", description: "Kafka-compatible broker (Tansu)", command: programs.tansu,
                              arguments: ["broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", storage.engineURL],
                              environment: storage.environment),
            node: node, health: .tcp(host: node.address, port: Port.broker), afterStart: topics,
            ready: "list=${__pb_topics-$(\(programs.tansu) topic list --broker \(url))} && "
                + PipelineSpec.topics.map { "case \"$list\" in *'\"name\":\"\($0)\"'*) ;; *) false ;; esac" }.joined(separator: " && "))
        service.beforeStart = storage.prepare
        return service
    }

    /// The MongoDB-wire server, with a file store so that a restart keeps the data.
    public func mongo(on node: RuntimeNode) -> PlacedService {
        PlacedService(
            unit: ServiceUnit(name: "pipeline-mongodb", description: "MongoDB wire-protocol server (nx-27017)", command: programs.mongo,
                              arguments: ["--host", node.address, "-p", String(Port.mongo), "--db", "\(Self.data)/mongodb/pipeline.db",
                                          "--pid-file", "/run/pipeline-mongodb.server.pid", "--log-file", "/var/log/provision/pipeline-mongodb.server.log"]),
            node: node, files: [RemoteFile(path: "\(Self.data)/mongodb/.keep", contents: "")], health: .tcp(host: node.address, port: Port.mongo))
    }

    /// The processor, consuming from the broker into MongoDB, serving /metrics to Prometheus.
    public func processor(on node: RuntimeNode) -> PlacedService {
        PlacedService(
            unit: ServiceUnit(
                name: "pipeline-processor", description: "GPU pipeline processor", command: programs.processor,
                arguments: ["--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"]
                    // Fewer, fuller fetches: Tansu on an object store lists a partition's objects per fetch.
                    + (durableBroker ? ["--kafka", "fetch.wait.max.ms=1000", "--kafka", "fetch.min.bytes=65536"] : []),
                environment: [
                    "KAFKA_BROKERS": "\(node.address):\(Port.broker)",
                    "MONGODB_URI": "mongodb://\(node.address):\(Port.mongo)/?serverSelectionTimeoutMS=2000",
                    "HTTP_HOST": node.address, "HTTP_PORT": String(Port.processor),
                    "BATCH_SIZE": String(pipeline.batchSize), "BATCH_WAIT_MS": String(pipeline.batchWaitMs),
                    "RETENTION_DAYS": String(pipeline.retentionDays), "LD_LIBRARY_PATH": programs.libraries,
                ]),
            node: node, health: .http(host: node.address, port: Port.processor, path: "/ready"))
    }

    /// Prometheus: scrapes the processor every second (verify's rates need a sample after the
    /// first documents), every node's node-exporter every 2 s (verify waits for each node's first
    /// scrape, which comes up to one interval after discovery) and itself every 5 s;
    /// evaluates the pipeline's alert rules and sends alerts to Alertmanager.
    public func prometheus(on node: RuntimeNode, nodes: [RuntimeNode]) -> PlacedService {
        let exporters = nodes.map { "'\($0.address):\(Port.nodeExporter)'" }.joined(separator: ", ")
        let config = """
            # Written by provision (runtime: processes).
            global:
              scrape_interval: 5s
              evaluation_interval: 5s
            rule_files: ['\(Self.config)/rules/pipeline-rules.yaml']
            alerting:
              alertmanagers:
                - static_configs: [{targets: ['\(node.address):\(Port.alertmanager)']}]
            scrape_configs:
              - job_name: prometheus
                static_configs: [{targets: ['\(node.address):\(Port.prometheus)']}]
              - job_name: processor
                scrape_interval: 1s
                static_configs: [{targets: ['\(node.address):\(Port.processor)']}]
              - job_name: node
                scrape_interval: 2s
                static_configs: [{targets: [\(exporters)]}]

            """
        return PlacedService(
            unit: ServiceUnit(name: "pipeline-prometheus", description: "Prometheus", command: programs.prometheus,
                              arguments: ["--config.file=\(Self.config)/prometheus.yml", "--storage.tsdb.path=\(Self.data)/prometheus",
                                          "--web.listen-address=\(node.address):\(Port.prometheus)", "--storage.tsdb.retention.time=2d"]),
            node: node,
            files: [RemoteFile(path: "\(Self.config)/prometheus.yml", contents: config),
                    RemoteFile(path: "\(Self.config)/rules/pipeline-rules.yaml", contents: rules)],
            health: .http(host: node.address, port: Port.prometheus, path: "/-/ready"))
    }

    /// Alertmanager, receiving Prometheus's alerts (one route to a receiver that drops them: the
    /// sandbox sends no mail; `verify` and the web UI read them).
    public func alertmanager(on node: RuntimeNode) -> PlacedService {
        let config = """
            # Written by provision (runtime: processes).
            route:
              receiver: sandbox
              group_by: [alertname]
            receivers:
              - name: sandbox

            """
        return PlacedService(
            unit: ServiceUnit(name: "pipeline-alertmanager", description: "Alertmanager", command: programs.alertmanager,
                              arguments: ["--config.file=\(Self.config)/alertmanager.yml", "--storage.path=\(Self.data)/alertmanager",
                                          "--web.listen-address=\(node.address):\(Port.alertmanager)", "--cluster.listen-address="]),
            node: node, files: [RemoteFile(path: "\(Self.config)/alertmanager.yml", contents: config)],
            health: .http(host: node.address, port: Port.alertmanager, path: "/-/ready"))
    }

    /// The broker's topics and their partition counts, asked on the broker's node.
    public static func topics(_ broker: PlacedService, on installer: ServiceInstaller) async throws -> [String: Int] {
        let result = try await installer.run(topicsCommand(broker), .seconds(20))
        guard result.succeeded, let topics = topics(listed: result.stdout) else {
            throw StepFailure("cannot list the broker's topics: \(result.summary) \(result.stderr.suffix(300))")
        }
        return topics
    }

    /// The read-only command that lists the broker's topics (JSON): what a batch's
    /// `topicsPrelude` listed, or a listing of its own.
    static func topicsCommand(_ broker: PlacedService) -> String {
        #"if [ -n "${__pb_topics+set}" ]; then printf '%s\n' "$__pb_topics"; else \#(topicList(broker)); fi"#
    }

    /// A `CommandBatch` prelude for the broker's node: the topics listed once, in `__pb_topics`,
    /// for the broker's readiness (its `ready`) and `topicsCommand` alike (each listing costs the
    /// node ~10 ms of CPU). A listing that fails leaves `__pb_topics` unset: each lists by itself.
    static func topicsPrelude(_ broker: PlacedService) -> String {
        "__pb_topics=$(\(topicList(broker))) || unset __pb_topics"
    }

    private static func topicList(_ broker: PlacedService) -> String {
        "\(broker.unit.command) topic list --broker tcp://\(broker.node.address):\(Port.broker)"
    }

    /// The topics and their partition counts in what `topicsCommand` printed; nil when it is not a list of topics.
    static func topics(listed output: String) -> [String: Int]? {
        guard let list = JSONValue.parse(output)?.array else { return nil }
        return Dictionary(list.compactMap { topic in
            topic["name"]?.string.map { ($0, topic["partitions"]?.array?.count ?? 0) }
        }, uniquingKeysWith: { $1 })
    }

    // MARK: Every node

    /// The node's exporter, one per node as kube-prometheus-stack runs one per node. Its health is
    /// its landing page: /metrics would make it collect every metric, and every `up` probes it.
    public func nodeExporter(on node: RuntimeNode) -> PlacedService {
        PlacedService(
            unit: ServiceUnit(name: "pipeline-node-exporter", description: "Prometheus node exporter", command: programs.nodeExporter,
                              arguments: ["--web.listen-address=\(node.address):\(Port.nodeExporter)"] + Self.nodeCollectors),
            node: node, health: .http(host: node.address, port: Port.nodeExporter, path: "/"))
    }

    /// What the node exporters collect: a machine's basics (CPU, memory, load, pressure, disks,
    /// file systems, network), not the ~40 default collectors. It makes a scrape ~4 ms of the node's
    /// CPU, not ~11 ms (BENCHMARKS.md), so that the 2 s scrapes cost less than 5 s ones did.
    static let nodeCollectors = ["--collector.disable-defaults"] + [
        "cpu", "diskstats", "filesystem", "loadavg", "meminfo", "netdev", "pressure", "stat", "time", "uname", "vmstat",
    ].map { "--collector.\($0)" }

    /// One producer per worker, continuous and paced at the plan's rate, with its own fleet.
    /// - Parameter index: the worker's position, seeding its synthetic GPUs apart from the others'.
    public func producer(on node: RuntimeNode, index: Int, broker: RuntimeNode) -> PlacedService {
        PlacedService(
            unit: ServiceUnit(
                name: "pipeline-producer", description: "GPU telemetry producer", command: programs.producer, arguments: ["--continuous"],
                environment: [
                    "KAFKA_BROKERS": "\(broker.address):\(Port.broker)", "RATE": String(pipeline.rate), "GPU_COUNT": String(pipeline.gpusPerProducer),
                    "GPU_SOURCE": "synthetic", "NODE_NAME": node.name, "SEED": String(1000 + index), "LD_LIBRARY_PATH": programs.libraries,
                    "STATE_FILE": Self.producerState,
                    // Tansu on an object store writes an object per produce request and partition.
                    "LINGER_MS": durableBroker ? String(Self.durableLinger.milliseconds) : "5",
                    // Tansu acknowledges an idempotent retry it never wrote when it was killed between
                    // recording the sequence and writing the batch: retries may duplicate instead, and
                    // the processor stores each event once by its identity (docs/self-healing.md).
                    "IDEMPOTENT": "false",
                ]),
            node: node, files: [RemoteFile(path: "\(Self.data)/producer/.keep", contents: "")], health: .running)
    }
}
