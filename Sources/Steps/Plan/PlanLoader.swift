import Engine
import Foundation
import Yams

/// Reads a plan file into a validated `Plan`. Every problem is a `PlanError` with file, line,
/// column, the offending text and what is allowed instead.
public enum PlanLoader {
    static let topKeys = ["name", "description", "target", "runtime", "parallelism", "secrets", "cluster", "sandbox", "pipeline", "k3s", "steps"]
    static let clusterKeys = ["region", "worker_count", "instance_type", "ami", "allowed_cidrs", "allow_world_admin", "root_volume_gb",
                              "ssh_user", "node_ready_timeout", "terraform_dir", "workers_via_bastion", "vpc_cidr"]
    static let sandboxKeys = ["cloud_init_delay", "init", "node_image", "workloads", "librdkafka", "rules", "durable_broker"]
    static let pipelineKeys = ["rate", "gpus_per_producer", "batch_size", "batch_wait_ms", "partitions", "retention_days", "max_latency", "kafka_replicas", "images"]
    static let k3sKeys = ["version", "token", "extra_args", "disable", "ready_timeout", "install_timeout", "merge_kubeconfig", "kubeconfig", "airgap",
                          "deploy", "manifests", "overlay", "rollout_timeout",
                          "api_access", "api_local_port", "monitoring", "monitoring_timeout", "verify", "verify_timeout",
                          "cluster_cidr", "service_cidr", "install_script_sha256", "max_unavailable", "drain_timeout"]
    static let airgapKeys = ["install_script", "binary", "images"]
    static let stepKeys = ["id", "description", "needs", "retry", "for_each", "exec"]
    static let execKeys = ["run", "check", "down", "env", "dir", "secrets"]
    static let retryKeys = ["attempts", "backoff", "max_backoff", "timeout"]

    /// Loads and validates the plan at `path`.
    public static func load(path: String) throws -> Plan {
        try loadWithText(path: path).plan
    }

    /// The largest plan file accepted, in bytes: a plan is read whole and parsed in memory.
    public static let maxPlanBytes = 1 << 20
    /// The most steps a plan may list (fan-out children not counted).
    public static let maxSteps = 2000

    /// Loads and validates the plan at `path`, returning the text it was parsed from too.
    public static func loadWithText(path: String) throws -> (plan: Plan, text: String) {
        let data = try readPlanFile(path)
        return (try parse(data, path: path), String(decoding: data, as: UTF8.self))
    }

    /// Reads a plan file after checking with `stat` what the path is, so a directory, a FIFO (which
    /// would block an `open`) or a device is named as such, and an oversized file is refused unread.
    static func readPlanFile(_ path: String) throws -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw PlanError(file: path, message: "no plan file here", hint: "pass --plan with the path of a plan, such as plans/demo.yaml")
            }
            throw PlanError(file: path, message: "cannot read the plan: \(String(cString: strerror(code)))")
        }
        let notAFile = "pass --plan with the path of a plan file (a YAML text file), such as plans/demo.yaml"
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            break
        case S_IFDIR:
            throw PlanError(file: path, message: "the path is a directory, not a plan file", hint: notAFile)
        case S_IFIFO:
            throw PlanError(file: path, message: "the path is a FIFO, not a plan file", hint: "plans are read from regular files; write the plan to a file and pass that")
        case S_IFCHR where URL(fileURLWithPath: path).resolvingSymlinksInPath().path == "/dev/null":
            throw PlanError(file: path, message: "the plan is empty: /dev/null is a device, not a plan file", hint: notAFile)
        case S_IFCHR, S_IFBLK:
            throw PlanError(file: path, message: "the path is a device, not a plan file", hint: notAFile)
        default:
            throw PlanError(file: path, message: "the path is a socket or another special file, not a plan file", hint: notAFile)
        }
        guard Int(info.st_size) <= maxPlanBytes else { throw tooLarge(path, bytes: Int(info.st_size)) }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw PlanError(file: path, message: "cannot read the plan: \(String(cString: strerror(code)))",
                            hint: code == EACCES ? "make the file readable (chmod u+r) or run as its owner" : nil)
        }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw PlanError(file: path, message: "cannot read the plan: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
            // The file may have grown since stat.
            guard data.count <= maxPlanBytes else { throw tooLarge(path, bytes: data.count) }
        }
        return data
    }

    static func tooLarge(_ path: String, bytes: Int) -> PlanError {
        PlanError(file: path, message: "the plan is \(byteCount(bytes)), larger than the \(byteCount(maxPlanBytes)) a plan may be",
                  hint: "a plan lists steps, not data: move large content into files the steps read, or use for_each to fan out")
    }

    static func byteCount(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) : "\(bytes) bytes"
    }

    /// Parses plan bytes; `path` is used in messages and to resolve relative directories.
    public static func parse(_ data: Data, path: String) throws -> Plan {
        guard data.count <= maxPlanBytes else { throw tooLarge(path, bytes: data.count) }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\0") else {
            throw PlanError(file: path, message: "the plan is not UTF-8 text (is it a binary file?)", hint: "a plan is a YAML text file; see plans/demo.yaml")
        }
        let reader = PlanReader(file: path, text: text)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw yamlError(error, reader: reader)
        }
        guard let root, !(root.scalar.map(reader.isNull) ?? false) else {
            throw PlanError(file: path, message: "the plan is empty", hint: "a plan needs at least 'name:' and 'steps:'; see plans/demo.yaml")
        }
        return try plan(root, reader: reader, path: path)
    }

    private static func plan(_ root: Node, reader: PlanReader, path: String) throws -> Plan {
        let top = try reader.mapping(root, "the plan", allowed: topKeys, required: ["name"])
        let nameNode = top["name"]!.value
        let name = try reader.string(nameNode, "name")
        guard name.range(of: "^[a-z0-9][a-z0-9-]{0,62}$", options: .regularExpression) != nil else {
            throw reader.error(at: nameNode, "name '\(name)' is not allowed", hint: "use lowercase letters, digits and '-' (it names the state folder), like 'gpu-pipeline'")
        }
        var target = Plan.Target.local
        if let node = top["target"]?.value {
            let text = try reader.string(node, "target")
            let allowed = Plan.Target.allCases.map(\.rawValue)
            guard let value = Plan.Target(rawValue: text) else {
                let suggestion = EditDistance.suggestion(for: text, among: allowed).map { "did you mean '\($0)'? " } ?? ""
                throw reader.error(at: node, "unknown target '\(text)'", hint: "\(suggestion)allowed: \(allowed.joined(separator: ", "))")
            }
            target = value
        }
        let parallelism = try top["parallelism"].map { try reader.int($0.value, "parallelism", range: 1...256) }
        let secrets = try top["secrets"].map { try self.secrets($0.value, reader: reader) } ?? [:]

        let (cluster, sandbox) = try clusterSections(top, target: target, root: root, reader: reader)
        let (runtime, pipeline) = try runtimeSections(top, target: target, reader: reader)
        let k3s = try k3sSection(top, target: target, runtime: runtime, secrets: secrets, root: root, reader: reader)
        if target == .aws, k3s?.deploy == true, pipeline?.images == nil {
            throw reader.error(at: top["pipeline"]?.key ?? top["target"]?.value, "the aws target deploys the pipeline and needs 'pipeline.images' (processor and producer)",
                               hint: "build and push both images (README, \"Images\"), then set pipeline.images.processor and .producer to their pinned references; or 'k3s.deploy: false'")
        }
        let sequence: [Node]
        switch top["steps"]?.value {
        case .sequence(let list)? where !list.isEmpty || target.createsMachines:
            sequence = Array(list)
        case nil where target.createsMachines:
            sequence = []
        case let node:
            throw reader.error(at: node ?? root, node == nil ? "the plan has no 'steps:'" : "steps must be a non-empty list",
                               hint: "write each step as '- id: NAME' followed by 'exec:'")
        }
        guard sequence.count <= maxSteps else {
            throw reader.error(at: top["steps"]?.value, "the plan has \(sequence.count) steps, more than the \(maxSteps) a plan may have",
                               hint: "use for_each to fan one step out over a list, or split the plan into several plans")
        }
        var steps: [StepSpec] = []
        var seen: [String: Int] = [:]
        for node in sequence {
            let spec = try step(node, reader: reader, secrets: secrets)
            if target.createsMachines, Plan.Target.reservedStepIDs.contains(spec.id) {
                throw reader.error(at: node, "step id '\(spec.id)' is one of the built-in steps of a \(target.rawValue) plan",
                                   hint: "pick another id; built-in steps are \(Plan.Target.reservedStepIDs.joined(separator: ", ")), and your steps may 'needs:' them")
            }
            if let first = seen[spec.id] {
                throw reader.error(at: node, "step id '\(spec.id)' is already used on line \(first)", hint: "give every step its own id")
            }
            seen[spec.id] = spec.line
            steps.append(spec)
        }
        if let cluster, let k3s {
            try checkNetworks(cluster: cluster, k3s: k3s, top: top, reader: reader)
        }
        let plan = Plan(name: name, target: target, parallelism: parallelism, secrets: secrets, cluster: cluster, sandbox: sandbox, steps: steps, path: path,
                        runtime: runtime, pipeline: pipeline, k3s: k3s)
        try checkReferences(plan, sequence: sequence, reader: reader)
        return plan
    }

    private static func secrets(_ node: Node, reader: PlanReader) throws -> [String: SecretSource] {
        guard case .mapping(let mapping) = node else {
            throw reader.error(at: node, "secrets must map names to sources", hint: "write 'api_token: {env: API_TOKEN}' or 'api_token: {file: secrets/token}'")
        }
        var result: [String: SecretSource] = [:]
        for (key, value) in mapping {
            let name = try reader.string(key, "a secret name")
            guard name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                throw reader.error(at: key, "secret name '\(name)' is not allowed", hint: "use letters, digits and '_' (it becomes an environment variable name)")
            }
            let source = try reader.mapping(value, "secret '\(name)'", allowed: ["env", "file"])
            switch (source["env"], source["file"]) {
            case (let env?, nil): result[name] = .environment(try reader.string(env.value, "secrets.\(name).env"))
            case (nil, let file?): result[name] = .file(try reader.string(file.value, "secrets.\(name).file"))
            default:
                throw reader.error(at: value, "secret '\(name)' needs exactly one of 'env' or 'file'",
                                   hint: "secret values never go in the plan itself: write '{env: VARIABLE}' or '{file: path}'")
            }
        }
        return result
    }

    private static func step(_ node: Node, reader: PlanReader, secrets: [String: SecretSource]) throws -> StepSpec {
        let keys = try reader.mapping(node, "a step", allowed: stepKeys, required: ["id", "exec"])
        let idNode = keys["id"]!.value
        let id = try reader.string(idNode, "id")
        guard id.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", options: .regularExpression) != nil else {
            throw reader.error(at: idNode, "step id '\(id)' is not allowed",
                               hint: "use letters, digits, '.', '_' and '-' ('/' is reserved for fan-out children), like 'k3s.install'")
        }
        let needs = try keys["needs"].map { try reader.stringList($0.value, "needs") } ?? []
        let retry = try keys["retry"].map { try self.retry($0.value, reader: reader) } ?? RetryPolicy()
        var forEach: StepSpec.ForEach?
        if let node = keys["for_each"]?.value {
            let f = try reader.mapping(node, "for_each", allowed: ["step", "output"], required: ["step"])
            forEach = .init(step: try reader.string(f["step"]!.value, "for_each.step"),
                            output: try f["output"].map { try reader.string($0.value, "for_each.output") } ?? "lines")
        }
        let execNode = keys["exec"]!.value
        let e = try reader.mapping(execNode, "exec", allowed: execKeys, required: ["run"])
        let execSecrets = try e["secrets"].map { try reader.stringList($0.value, "exec.secrets") } ?? []
        for name in execSecrets where secrets[name] == nil {
            let suggestion = EditDistance.suggestion(for: name, among: Array(secrets.keys)).map { "did you mean '\($0)'? " } ?? ""
            throw reader.error(at: e["secrets"]!.value, "step '\(id)' uses secret '\(name)', which the plan's 'secrets:' section does not declare",
                               hint: "\(suggestion)declare it at the top: 'secrets: {\(name): {env: \(name.uppercased())}}'")
        }
        let exec = ExecSpec(
            run: try reader.string(e["run"]!.value, "exec.run"),
            check: try e["check"].map { try reader.string($0.value, "exec.check") },
            down: try e["down"].map { try reader.string($0.value, "exec.down") },
            env: try e["env"].map { try reader.stringMap($0.value, "exec.env") } ?? [:],
            dir: try e["dir"].map { try reader.string($0.value, "exec.dir") },
            secrets: execSecrets)
        return StepSpec(id: id, needs: needs, retry: retry, forEach: forEach, exec: exec, line: node.mark?.line ?? 0)
    }

    private static func retry(_ node: Node, reader: PlanReader) throws -> RetryPolicy {
        let r = try reader.mapping(node, "retry", allowed: retryKeys)
        var policy = RetryPolicy()
        if let n = r["attempts"] { policy.attempts = try reader.int(n.value, "retry.attempts", range: 1...100) }
        if let n = r["backoff"] { policy.backoff = try reader.duration(n.value, "retry.backoff") }
        if let n = r["max_backoff"] { policy.maxBackoff = try reader.duration(n.value, "retry.max_backoff") }
        if let n = r["timeout"] { policy.timeout = try reader.duration(n.value, "retry.timeout") }
        return policy
    }

    private static func clusterSections(
        _ top: [String: (key: Node, value: Node)], target: Plan.Target, root: Node, reader: PlanReader
    ) throws -> (ClusterSpec?, SandboxSpec?) {
        if target == .local {
            for key in ["cluster", "sandbox"] where top[key] != nil {
                throw reader.error(at: top[key]!.key, "'\(key):' only applies to the sandbox and aws targets", hint: "set 'target: sandbox' or remove the section")
            }
            return (nil, nil)
        }
        if target == .aws, let node = top["sandbox"] {
            throw reader.error(at: node.key, "'sandbox:' only applies to the sandbox target", hint: "remove it from an aws plan")
        }
        guard let node = top["cluster"]?.value else {
            throw reader.error(at: root, "a \(target.rawValue) plan needs a 'cluster:' section",
                               hint: "add 'cluster: {worker_count: 2, allowed_cidrs: [203.0.113.7/32]}'; see plans/sandbox.yaml")
        }
        let c = try reader.mapping(node, "cluster", allowed: clusterKeys, required: target == .aws ? ["allowed_cidrs"] : [])
        var cluster = ClusterSpec()
        if let n = c["region"] { cluster.region = try reader.string(n.value, "cluster.region") }
        if let n = c["worker_count"] { cluster.workerCount = try reader.int(n.value, "cluster.worker_count", range: 0...50) }
        if let n = c["instance_type"] { cluster.instanceType = try reader.string(n.value, "cluster.instance_type") }
        if let n = c["ami"] {
            let ami = try reader.string(n.value, "cluster.ami")
            guard ami.range(of: "^ami-[0-9a-f]+$", options: .regularExpression) != nil else {
                throw reader.error(at: n.value, "cluster.ami '\(ami)' is not an AMI id",
                                   hint: "write an id like ami-0abcdef1234567890 from your region, or leave cluster.ami out to run Canonical's newest Ubuntu 24.04")
            }
            cluster.ami = ami
        }
        if let n = c["root_volume_gb"] { cluster.rootVolumeGB = try reader.int(n.value, "cluster.root_volume_gb", range: 8...16384) }
        if let n = c["ssh_user"] { cluster.sshUser = try reader.string(n.value, "cluster.ssh_user") }
        if let n = c["node_ready_timeout"] { cluster.nodeReadyTimeout = try reader.duration(n.value, "cluster.node_ready_timeout") }
        if let n = c["terraform_dir"] { cluster.terraformDirectory = try reader.string(n.value, "cluster.terraform_dir") }
        if let n = c["allow_world_admin"] { cluster.allowWorldAdmin = try reader.bool(n.value, "cluster.allow_world_admin") }
        if let n = c["workers_via_bastion"] { cluster.workersViaBastion = try reader.bool(n.value, "cluster.workers_via_bastion") }
        if let n = c["vpc_cidr"] {
            cluster.vpcCIDR = try cidr(try reader.string(n.value, "cluster.vpc_cidr"), "cluster.vpc_cidr", at: n.value, reader: reader,
                                       example: "10.42.0.0/16", prefixes: vpcPrefixes)
        }
        cluster.allowedCIDRs = target == .sandbox ? ["127.0.0.0/8"] : []
        if let n = c["allowed_cidrs"] {
            cluster.allowedCIDRs = try reader.stringList(n.value, "cluster.allowed_cidrs")
            for text in cluster.allowedCIDRs {
                _ = try cidr(text, "cluster.allowed_cidrs", at: n.value, reader: reader, example: "203.0.113.7/32")
            }
            if cluster.allowedCIDRs.isEmpty {
                throw reader.error(at: n.value, "cluster.allowed_cidrs is empty", hint: "list who may reach SSH and the Kubernetes API, like [203.0.113.7/32]")
            }
            if cluster.allowedCIDRs.contains("0.0.0.0/0") && !cluster.allowWorldAdmin {
                throw reader.error(at: n.value, "cluster.allowed_cidrs opens SSH and the Kubernetes API to the whole internet (0.0.0.0/0)",
                                   hint: "list your own address (x.x.x.x/32), or add 'allow_world_admin: true' if you really mean it")
            }
        }
        var sandbox: SandboxSpec?
        if target == .sandbox {
            var spec = SandboxSpec()
            if let node = top["sandbox"]?.value {
                let s = try reader.mapping(node, "sandbox", allowed: sandboxKeys)
                if let n = s["cloud_init_delay"] { spec.cloudInitDelay = try reader.duration(n.value, "sandbox.cloud_init_delay") }
                if let n = s["init"] {
                    let text = try reader.string(n.value, "sandbox.init")
                    guard let initSystem = InitSystem(rawValue: text) else {
                        throw reader.error(at: n.value, "sandbox.init must be openrc or systemd, not '\(text)'",
                                           hint: "systemd boots each node as a systemd-nspawn machine running cloud-init; openrc is the default")
                    }
                    spec.initSystem = initSystem
                    if initSystem == .systemd { spec.nodeImage = "../.tools/node-image-systemd" }
                }
                if let n = s["node_image"] { spec.nodeImage = try reader.string(n.value, "sandbox.node_image") }
                if let n = s["workloads"] { spec.workloads = try reader.string(n.value, "sandbox.workloads") }
                if let n = s["librdkafka"] { spec.librdkafka = try reader.string(n.value, "sandbox.librdkafka") }
                if let n = s["rules"] { spec.rules = try reader.string(n.value, "sandbox.rules") }
                if let n = s["durable_broker"] { spec.durableBroker = try reader.bool(n.value, "sandbox.durable_broker") }
            }
            sandbox = spec
        }
        return (cluster, sandbox)
    }

    /// `runtime:` and `pipeline:`: what runs on the nodes of a cluster target.
    private static func runtimeSections(
        _ top: [String: (key: Node, value: Node)], target: Plan.Target, reader: PlanReader
    ) throws -> (Plan.Runtime?, PipelineSpec?) {
        guard target.createsMachines else {
            for key in ["runtime", "pipeline", "k3s"] where top[key] != nil {
                throw reader.error(at: top[key]!.key, "'\(key):' only applies to the sandbox and aws targets", hint: "set 'target: sandbox' or remove it")
            }
            return (nil, nil)
        }
        var runtime = target.defaultRuntime
        if let node = top["runtime"]?.value {
            let text = try reader.string(node, "runtime")
            let allowed = Plan.Runtime.allCases.map(\.rawValue)
            guard let value = Plan.Runtime(rawValue: text) else {
                let suggestion = EditDistance.suggestion(for: text, among: allowed).map { "did you mean '\($0)'? " } ?? ""
                throw reader.error(at: node, "unknown runtime '\(text)'", hint: "\(suggestion)allowed: \(allowed.joined(separator: ", "))")
            }
            if target == .aws && value == .processes {
                throw reader.error(at: node, "runtime 'processes' runs on sandbox nodes only for now", hint: "use 'runtime: k3s' (the aws default) or 'target: sandbox'")
            }
            runtime = value
        }
        var pipeline = PipelineSpec()
        if let node = top["pipeline"]?.value {
            let p = try reader.mapping(node, "pipeline", allowed: pipelineKeys)
            if let n = p["rate"] { pipeline.rate = try reader.number(n.value, "pipeline.rate", range: 0.1...100_000) }
            if let n = p["gpus_per_producer"] { pipeline.gpusPerProducer = try reader.int(n.value, "pipeline.gpus_per_producer", range: 1...1024) }
            if let n = p["batch_size"] { pipeline.batchSize = try reader.int(n.value, "pipeline.batch_size", range: 1...100_000) }
            if let n = p["batch_wait_ms"] { pipeline.batchWaitMs = try reader.int(n.value, "pipeline.batch_wait_ms", range: 1...60_000) }
            if let n = p["partitions"] { pipeline.partitions = try reader.int(n.value, "pipeline.partitions", range: 1...1000) }
            if let n = p["retention_days"] { pipeline.retentionDays = try reader.int(n.value, "pipeline.retention_days", range: 0...3650) }
            if let n = p["max_latency"] {
                let limit = try reader.duration(n.value, "pipeline.max_latency")
                guard limit >= .milliseconds(100) && limit <= .seconds(3600) else {
                    throw reader.error(at: n.value, "pipeline.max_latency must be between 100ms and 1h, found \(limit.formatted)",
                                       hint: "the end-to-end latency verify accepts, like 5s (the sandbox's durable broker defaults to 30s)")
                }
                pipeline.maxLatency = limit
            }
            if let n = p["kafka_replicas"] {
                let count = try reader.int(n.value, "pipeline.kafka_replicas", range: 1...9)
                guard PipelineSpec.kafkaReplicaCounts.contains(count) else {
                    throw reader.error(at: n.value, "pipeline.kafka_replicas must be 1 or 3, found \(count)",
                                       hint: "1 broker, or 3 for a KRaft quorum that survives losing one (an even count survives no more than one fewer)")
                }
                pipeline.kafkaReplicas = count
            }
            if let n = p["images"] { pipeline.images = try images(n.value, reader: reader) }
        }
        return (runtime, pipeline)
    }

    /// `pipeline.images`: both references, each pinned by tag or digest.
    private static func images(_ node: Node, reader: PlanReader) throws -> PipelineSpec.Images {
        let m = try reader.mapping(node, "pipeline.images", allowed: ["processor", "producer"], required: ["processor", "producer"])
        func reference(_ key: String) throws -> String {
            let value = m[key]!.value
            let text = try reader.string(value, "pipeline.images.\(key)")
            if let problem = PipelineSpec.Images.problem(text) {
                throw reader.error(at: value, "pipeline.images.\(key): \(problem)", hint: "write it as REGISTRY/REPOSITORY:TAG (e.g. ghcr.io/you/\(key):v0.1.0) or REGISTRY/REPOSITORY@sha256:DIGEST")
            }
            return text
        }
        return PipelineSpec.Images(processor: try reference("processor"), producer: try reference("producer"))
    }

    /// `k3s:`: required with `runtime: k3s` (its `version` at least), refused otherwise.
    private static func k3sSection(
        _ top: [String: (key: Node, value: Node)], target: Plan.Target, runtime: Plan.Runtime?, secrets: [String: SecretSource],
        root: Node, reader: PlanReader
    ) throws -> K3sSpec? {
        guard runtime == .k3s else {
            if let node = top["k3s"] {
                throw reader.error(at: node.key, "'k3s:' only applies to 'runtime: k3s'", hint: "set 'runtime: k3s' or remove the section")
            }
            return nil
        }
        guard let section = top["k3s"]?.value else {
            throw reader.error(at: top["runtime"]?.value ?? root, "runtime k3s needs a 'k3s:' section with the pinned version",
                               hint: "add 'k3s: {version: v1.37.1+k3s1}'; see plans/aws.yaml")
        }
        let k = try reader.mapping(section, "k3s", allowed: k3sKeys, required: ["version"])
        let versionNode = k["version"]!.value
        var spec = K3sSpec(version: try reader.string(versionNode, "k3s.version"))
        guard spec.version.range(of: #"^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$"#, options: .regularExpression) != nil else {
            throw reader.error(at: versionNode, "k3s.version '\(spec.version)' is not a K3s release",
                               hint: "pin an exact release such as v1.37.1+k3s1 (channels like 'stable' or 'latest' are not pins)")
        }
        if let n = k["token"] {
            let name = try reader.string(n.value, "k3s.token")
            guard secrets[name] != nil else {
                let suggestion = EditDistance.suggestion(for: name, among: Array(secrets.keys)).map { "did you mean '\($0)'? " } ?? ""
                throw reader.error(at: n.value, "k3s.token names '\(name)', which is not in 'secrets:'",
                                   hint: "\(suggestion)declare it, as 'secrets: {\(name): {env: K3S_TOKEN}}', or leave k3s.token out to let the server generate the token")
            }
            spec.tokenSecret = name
        }
        if let n = k["extra_args"] {
            spec.extraArgs = try reader.stringList(n.value, "k3s.extra_args")
            for arg in spec.extraArgs {
                guard arg.hasPrefix("-") else {
                    throw reader.error(at: n.value, "'\(arg)' in k3s.extra_args is not a flag", hint: "write flags of 'k3s server', like --kubelet-arg=max-pods=200")
                }
                let flag = String(arg.split(separator: "=", maxSplits: 1)[0])
                guard !K3sSpec.reservedArgs.contains(flag) else {
                    let key = K3sSpec.reservedArgKeys[flag]
                    throw reader.error(at: n.value, "k3s.extra_args may not set \(flag): provision sets it",
                                       hint: key == "k3s.token" ? "name the token's secret in k3s.token" : key.map { "set \($0) instead" } ?? "remove it")
                }
            }
            try checkDatastoreEndpoint(spec.extraArgs, at: n.value, reader: reader)
        }
        if let n = k["disable"] {
            spec.disable = try reader.stringList(n.value, "k3s.disable")
            for item in spec.disable {
                if item == "metrics-server" {
                    throw reader.error(at: n.value, "k3s.disable lists metrics-server, which the pipeline's HorizontalPodAutoscaler needs",
                                       hint: "keep metrics-server; disable only \(K3sSpec.disableable.filter { $0 != "metrics-server" }.joined(separator: ", "))")
                }
                guard K3sSpec.disableable.contains(item) else {
                    let suggestion = EditDistance.suggestion(for: item, among: K3sSpec.disableable).map { "did you mean '\($0)'? " } ?? ""
                    throw reader.error(at: n.value, "k3s.disable lists '\(item)', which K3s does not package",
                                       hint: "\(suggestion)allowed: \(K3sSpec.disableable.filter { $0 != "metrics-server" }.joined(separator: ", "))")
                }
            }
        }
        if let n = k["ready_timeout"] { spec.readyTimeout = try reader.duration(n.value, "k3s.ready_timeout") }
        if let n = k["install_timeout"] { spec.installTimeout = try reader.duration(n.value, "k3s.install_timeout") }
        if let n = k["rollout_timeout"] { spec.rolloutTimeout = try reader.duration(n.value, "k3s.rollout_timeout") }
        if let n = k["drain_timeout"] { spec.drainTimeout = try reader.duration(n.value, "k3s.drain_timeout") }
        if let n = k["max_unavailable"] { spec.maxUnavailable = try reader.int(n.value, "k3s.max_unavailable", range: 1...100) }
        if let n = k["deploy"] { spec.deploy = try reader.bool(n.value, "k3s.deploy") }
        if let n = k["monitoring"] { spec.monitoring = try reader.bool(n.value, "k3s.monitoring") }
        if let n = k["monitoring_timeout"] { spec.monitoringTimeout = try reader.duration(n.value, "k3s.monitoring_timeout") }
        if let n = k["verify"] { spec.verify = try reader.bool(n.value, "k3s.verify") }
        if let n = k["verify_timeout"] { spec.verifyTimeout = try reader.duration(n.value, "k3s.verify_timeout") }
        if let n = k["manifests"] { spec.manifests = try reader.string(n.value, "k3s.manifests") }
        if let n = k["overlay"] { spec.overlay = try reader.string(n.value, "k3s.overlay") }
        for (key, value) in [("ready_timeout", spec.readyTimeout), ("install_timeout", spec.installTimeout), ("rollout_timeout", spec.rolloutTimeout),
                             ("monitoring_timeout", spec.monitoringTimeout), ("verify_timeout", spec.verifyTimeout), ("drain_timeout", spec.drainTimeout)]
        where value < .seconds(1) && k[key] != nil {
            throw reader.error(at: k[key]!.value, "k3s.\(key) must be at least 1s", hint: "write a duration like 90s or 5m")
        }
        if let n = k["merge_kubeconfig"] { spec.mergeKubeconfig = try reader.bool(n.value, "k3s.merge_kubeconfig") }
        if let n = k["kubeconfig"] { spec.kubeconfigPath = try reader.string(n.value, "k3s.kubeconfig") }
        if let n = k["api_access"] {
            let text = try reader.string(n.value, "k3s.api_access")
            guard let access = K3sSpec.APIAccess(rawValue: text) else {
                let choices = K3sSpec.APIAccess.allCases.map(\.rawValue)
                let suggestion = EditDistance.suggestion(for: text, among: choices).map { "did you mean '\($0)'? " } ?? ""
                throw reader.error(at: n.value, "k3s.api_access '\(text)' is neither public nor forward",
                                   hint: "\(suggestion)write 'public' (the API at the control plane's public address) or 'forward' (through 'provision port-forward api')")
            }
            spec.apiAccess = access
        }
        if let n = k["cluster_cidr"] {
            spec.clusterCIDR = try cidr(try reader.string(n.value, "k3s.cluster_cidr"), "k3s.cluster_cidr", at: n.value, reader: reader,
                                        example: "10.52.0.0/16", prefixes: clusterPrefixes)
        }
        if let n = k["service_cidr"] {
            spec.serviceCIDR = try cidr(try reader.string(n.value, "k3s.service_cidr"), "k3s.service_cidr", at: n.value, reader: reader,
                                        example: "10.53.0.0/16", prefixes: servicePrefixes)
        }
        if let n = k["api_local_port"] { spec.apiLocalPort = try reader.int(n.value, "k3s.api_local_port", range: 1...65535) }
        if let n = k["install_script_sha256"] {
            let text = try reader.string(n.value, "k3s.install_script_sha256")
            guard K3sSpec.isDigest(text) else {
                throw reader.error(at: n.value, "k3s.install_script_sha256 must be a sha256 (64 hex digits), found '\(text)'",
                                   hint: "the digest of install.sh at your k3s.version's tag: curl -sfL \(K3sSpec.installScriptURL(version: spec.version)) | sha256sum")
            }
            if k["airgap"] != nil {
                throw reader.error(at: n.value, "k3s.install_script_sha256 pins the downloaded install script; with k3s.airgap nothing is downloaded",
                                   hint: "remove it: k3s.airgap.install_script is the file that runs")
            }
            spec.installScriptSHA256 = text.lowercased()
        }
        if let n = k["airgap"] {
            let a = try reader.mapping(n.value, "k3s.airgap", allowed: airgapKeys, required: ["install_script", "binary"])
            spec.airgap = K3sSpec.Airgap(installScript: try reader.string(a["install_script"]!.value, "k3s.airgap.install_script"),
                                         binary: try reader.string(a["binary"]!.value, "k3s.airgap.binary"),
                                         images: try a["images"].map { try reader.string($0.value, "k3s.airgap.images") })
        } else if target == .sandbox {
            throw reader.error(at: section, "runtime k3s on sandbox nodes needs 'k3s.airgap': sandbox nodes download nothing",
                               hint: "give 'airgap: {install_script: ..., binary: ..., images: ...}' (local paths, relative to the plan)")
        }
        return spec
    }

    /// Dependencies and fan-out sources must name steps; the steps must have no cycle. Checked on
    /// ids alone: no step or transport is built.
    private static func checkReferences(_ plan: Plan, sequence: [Node], reader: PlanReader) throws {
        let ids = plan.steps.map(\.id) + plan.builtInSteps
        for (spec, node) in zip(plan.steps, sequence) {
            let keys = try reader.mapping(node, "a step", allowed: stepKeys)
            for need in spec.needs where !ids.contains(need) || need == spec.id {
                let at = keys["needs"]!.value
                if need == spec.id {
                    throw reader.error(at: at, "step '\(spec.id)' needs itself", hint: "remove '\(need)' from its needs")
                }
                let suggestion = EditDistance.suggestion(for: need, among: ids).map { "did you mean '\($0)'? " } ?? ""
                throw reader.error(at: at, "step '\(spec.id)' needs '\(need)', which is not a step in this plan",
                                   hint: "\(suggestion)steps are: \(ids.prefix(12).joined(separator: ", "))\(ids.count > 12 ? ", …" : "")")
            }
            if let forEach = spec.forEach, !ids.contains(forEach.step) || forEach.step == spec.id {
                let suggestion = EditDistance.suggestion(for: forEach.step, among: ids).map { "did you mean '\($0)'? " } ?? ""
                throw reader.error(at: keys["for_each"]!.value, "for_each names step '\(forEach.step)', which is not another step in this plan",
                                   hint: "\(suggestion)name the step whose output lists the items")
            }
        }
        do {
            // Built-in steps never depend on the plan's own, so only the plan's edges can close a cycle.
            let own = Set(plan.steps.map(\.id))
            _ = try StepGraph.order(plan.steps.map { spec in
                let source = spec.forEach.map { [$0.step] } ?? []
                return (StepID(spec.id), (source + spec.needs.filter { !source.contains($0) }).filter(own.contains).map { StepID($0) })
            })
        } catch let error as GraphError {
            guard case .cycle(let cycle) = error, let first = plan.steps.first(where: { $0.id == cycle.first?.rawValue }) else { throw error }
            throw reader.error(line: first.line, column: nil, error.description)
        }
    }

    private static func yamlError(_ error: YamlError, reader: PlanReader) -> PlanError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return reader.error(line: mark.line, column: mark.column, "this is not valid YAML: \(problem)",
                                hint: "check the indentation (spaces, not tabs) and quote values that contain ': ', '#' or start with '{', '[', '*', '&'")
        case .reader(let problem, _, _, _):
            return reader.error(line: nil, column: nil, "the plan cannot be read as YAML text: \(problem)", hint: "save it as UTF-8 text")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams marks the mapping; point at the second occurrence of the key instead.
            let key = duplicates.first ?? ""
            let hits = reader.lines.indices.filter { index in
                index + 1 >= context.mark.line && reader.lines[index].trimmingCharacters(in: .whitespaces).hasPrefix("\(key):")
            }
            let line = hits.count > 1 ? hits[1] + 1 : context.mark.line
            let column = hits.count > 1 ? (reader.lines[hits[1]].firstIndex { $0 != " " }.map { reader.lines[hits[1]].distance(from: reader.lines[hits[1]].startIndex, to: $0) + 1 }) : nil
            return reader.error(line: line, column: column, "key '\(key)' appears twice in one mapping", hint: "keep one of them")
        default:
            return reader.error(line: nil, column: nil, "this is not valid YAML: \(error)")
        }
    }
}
