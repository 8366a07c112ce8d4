import Engine
import Foundation
import JSON
import PlanLanguage
import Transport

/// Proves the pipeline works end to end, whichever runtime runs it: the processor answers, the
/// topics exist with their partitions, documents keep arriving in MongoDB, every worker's
/// producer is seen, Prometheus scrapes the processor and every node, data is ingested, no alert
/// fires, and the end-to-end latency is measured. The runtime says where the services are (a
/// node's address in the sandbox, a tunnel to a Service's address on K3s).
public struct PipelineVerifier: Sendable {
    /// Where the verifier reaches the services, and what it expects to see.
    public struct Targets: Sendable {
        /// Base URL of the processor's HTTP server (`http://10.0.1.5:8080`).
        public var processor: String
        /// Base URL of Prometheus's API.
        public var prometheus: String
        /// Workers whose producer must be seen in `/gpu/info`.
        public var workers: [String]
        /// Nodes whose node-exporter Prometheus must scrape.
        public var nodes: Int
        /// The broker's topics and their partition counts.
        public var topics: @Sendable () async throws -> [String: Int]
        /// Where to look next when a check fails (`provision logs service.processor`, say), by check.
        public var hints: [String: String] = [:]
        /// The Prometheus job of the node exporters (`node`; kube-prometheus-stack's is `node-exporter`).
        public var nodeJob = "node"
        /// Each topic's own partition count, when they differ (K3s: the kafka-topics ConfigMap);
        /// nil: every topic has `partitions`.
        public var partitionsByTopic: [String: Int]?
        /// Base URL of Loki's API, where the cluster ships its pods' logs (K3s); nil: no log check.
        public var loki: String?
        /// The LogQL stream selector of the processor's log lines in Loki.
        public var processorLogs = #"{namespace="app", container="processor"}"#

        public init(processor: String, prometheus: String, workers: [String], nodes: Int,
                    topics: @escaping @Sendable () async throws -> [String: Int], hints: [String: String] = [:]) {
            self.processor = processor
            self.prometheus = prometheus
            self.workers = workers
            self.nodes = nodes
            self.topics = topics
            self.hints = hints
        }
    }

    /// One line of the verify table.
    public struct Check: Codable, Sendable, Equatable {
        public var name: String
        public var expected: String
        public var seen: String
        public var ok: Bool
        /// What to look at next, when not ok.
        public var next: String?
    }

    public var targets: Targets
    public var partitions: Int
    /// How long checks that need time (first scrapes, first rates) may take to pass.
    public var timeout: Duration = .seconds(150)
    /// How long a check that has not passed yet waits before it asks again: a pipeline that has just
    /// started passes within this of its first documents and scrapes (`up` waits for verify).
    static let pollInterval = Duration.milliseconds(400)
    /// The longest wait for the document counts to rise after their first sample.
    public var sampleGap: Duration = .seconds(5)
    /// The end-to-end latency p99 must stay under this.
    public var latencyBudget = 5.0
    var http = HTTPClient(timeout: .seconds(10))

    public init(targets: Targets, partitions: Int) {
        self.targets = targets
        self.partitions = partitions
    }

    /// Runs every check and returns the table, failed checks included (never throws for a
    /// failed check: the table says what was seen).
    public func run(log: (@Sendable (String) -> Void)? = nil) async -> [Check] {
        let started = ContinuousClock.now
        let deadline = started + timeout
        var checks: [Check] = []
        // Each line says when its check settled, from verify's start: what a slow verify waited for.
        func line(_ check: Check) -> String {
            "\(check.ok ? "ok  " : "FAIL") \(check.name): \(check.seen) (at \(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s)"
        }
        func add(_ check: Check) {
            log?(line(check))
            checks.append(check)
        }
        add(await eventually("processor /health", expected: "200", until: deadline) { try await status("\(targets.processor)/health") })
        add(await eventually("processor /ready", expected: "200", until: deadline) { try await status("\(targets.processor)/ready") })
        add(await topicCheck(until: deadline))
        // The document counts may take up to `sampleGap` to rise: the checks that wait for the
        // first scrapes run meanwhile; the table keeps its order.
        async let counts = countChecks()
        var later: [Check] = []
        func addLater(_ check: Check) {
            log?(line(check))
            later.append(check)
        }
        addLater(await eventually("producers seen in /gpu/info", expected: targets.workers.sorted().joined(separator: ", "), until: deadline) {
            let nodes = try await gpuNodes()
            return (Set(targets.workers).isSubset(of: nodes), nodes.sorted().joined(separator: ", "))
        })
        addLater(await eventually("Prometheus scrapes the processor", expected: "up", until: deadline) {
            let up = try await targetsUp(job: "processor")
            return (up.up >= 1, "\(up.up) of \(up.total) up")
        })
        addLater(await eventually("Prometheus scrapes every node", expected: "\(targets.nodes) up", until: deadline) {
            let up = try await targetsUp(job: targets.nodeJob)
            return (up.up == targets.nodes, "\(up.up) of \(up.total) up")
        })
        addLater(await eventually("ingest rate", expected: "> 0 documents/s", until: deadline) {
            let rate = try await query("sum(rate(processor_written_total[30s]))") ?? 0
            return (rate > 0, String(format: "%.1f documents/s", rate))
        })
        for check in await counts { add(check) }
        checks += later
        // Alerts are read once, as before: after the counts' gap.
        add(await firingAlerts())
        for check in await latencyChecks(until: deadline) { add(check) }
        if let loki = targets.loki {
            add(await eventually("Loki has the processor's logs", expected: "> 0 lines in the last 15m", until: deadline) {
                let lines = try await logLines(loki, targets.processorLogs)
                return (lines > 0, "\(lines) lines")
            })
        }
        return checks.map { check in
            var check = check
            if !check.ok { check.next = targets.hints[check.name] ?? check.next }
            return check
        }
    }

    /// The table as text: check, expected, seen, ok.
    public static func table(_ checks: [PipelineVerifier.Check]) -> String {
        let width = (checks.map(\.name.count).max() ?? 5, checks.map(\.expected.count).max() ?? 8)
        func pad(_ text: String, _ n: Int) -> String { text + String(repeating: " ", count: max(0, n - text.count)) }
        var lines = ["\(pad("CHECK", width.0))  \(pad("EXPECTED", width.1))  OK   SEEN"]
        lines += checks.map { "\(pad($0.name, width.0))  \(pad($0.expected, width.1))  \($0.ok ? "ok  " : "FAIL") \($0.seen)" }
        return lines.joined(separator: "\n")
    }

    // MARK: Checks

    private func topicCheck(until deadline: ContinuousClock.Instant) async -> Check {
        let wanted = targets.partitionsByTopic ?? Dictionary(uniqueKeysWithValues: PipelineSpec.topics.map { ($0, partitions) })
        let names = PipelineSpec.topics.filter { wanted[$0] != nil } + wanted.keys.filter { !PipelineSpec.topics.contains($0) }.sorted()
        let expected = names.map { "\($0) (\(wanted[$0]!))" }.joined(separator: ", ")
        return await eventually("topics", expected: expected, until: deadline) {
            let topics = try await targets.topics()
            let seen = names.map { "\($0) (\(topics[$0].map(String.init) ?? "missing"))" }.joined(separator: ", ")
            return (names.allSatisfy { topics[$0] == wanted[$0] }, seen)
        }
    }

    /// gpu_metrics and token_usage counts must rise within `sampleGap` of a first sample (asked
    /// again every `pollInterval`, so a flowing pipeline passes as soon as both rose).
    private func countChecks() async -> [Check] {
        let collections = ["gpu_metrics", "token_usage"]
        guard let first = try? await stats() else {
            return collections.map { Check(name: "\($0) documents rise", expected: "rising", seen: "no /stats answer", ok: false) }
        }
        func rose(_ counts: [String: Int], _ collection: String) -> Bool {
            (first[collection] ?? -1) >= 0 && (counts[collection] ?? -1) > (first[collection] ?? -1)
        }
        let start = ContinuousClock.now
        var second: [String: Int] = [:]
        repeat {
            try? await Task.sleep(for: min(Self.pollInterval, sampleGap))
            second = (try? await stats()) ?? second
        } while !collections.allSatisfy({ rose(second, $0) }) && ContinuousClock.now - start < sampleGap
        let waited = String(format: "%.1f s", (ContinuousClock.now - start).seconds)
        return collections.map { collection in
            Check(name: "\(collection) documents rise", expected: "rising",
                  seen: "\(first[collection] ?? -1) → \(second[collection] ?? -1) in \(waited)", ok: rose(second, collection))
        }
    }

    /// Firing alerts fail verify when critical and about now; a firing warning (a processor that
    /// restarted three times in 15 minutes) and an error budget's burn alert (labelled `slo`: it
    /// measures the last hour, so a fault `up` just repaired keeps it firing for minutes) are shown
    /// and pass: the table's own checks judge the flow now, and the alert says what to look at.
    func firingAlerts() async -> Check {
        let name = "no critical alert firing", expected = "none (warnings and budget burns shown)"
        do {
            let object = try await json("\(targets.prometheus)/api/v1/alerts")
            let alerts = object["data"]?["alerts"]?.array ?? []
            let firing = alerts.filter { $0["state"]?.string == "firing" }.compactMap { alert -> (name: String, severity: String, slo: Bool)? in
                guard let labels = alert["labels"], let name = labels["alertname"]?.string else { return nil }
                return (name, labels["severity"]?.string ?? "none", labels["slo"] != nil)
            }
            let seen = Set(firing.map { "\($0.name) (\($0.slo ? "\($0.severity), error budget" : $0.severity))" }).sorted().joined(separator: ", ")
            return Check(name: name, expected: expected, seen: firing.isEmpty ? "none" : seen, ok: !firing.contains { $0.severity == "critical" && !$0.slo })
        } catch {
            return Check(name: name, expected: expected, seen: "Prometheus did not answer: \(error)", ok: false)
        }
    }

    private func latencyChecks(until deadline: ContinuousClock.Instant) async -> [Check] {
        var checks: [Check] = []
        for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
            let expression = "histogram_quantile(\(q), sum by (le) (rate(processor_end_to_end_latency_seconds_bucket[30s])))"
            checks.append(await eventually("end-to-end latency \(label)", expected: String(format: "< %.1f s", latencyBudget), until: deadline) {
                guard let seconds = try await query(expression), seconds.isFinite else { return (false, "no samples yet") }
                return (seconds < latencyBudget, String(format: "%.3f s", seconds))
            })
        }
        return checks
    }

    // MARK: Requests

    /// Repeats `probe` until it passes or `deadline`; the check shows what was last seen.
    private func eventually(_ name: String, expected: String, until deadline: ContinuousClock.Instant,
                            _ probe: () async throws -> (Bool, String)) async -> Check {
        var seen = "nothing"
        while true {
            do {
                let (ok, text) = try await probe()
                seen = text
                if ok { return Check(name: name, expected: expected, seen: seen, ok: true) }
            } catch {
                seen = "\(error)"
            }
            guard ContinuousClock.now < deadline else { return Check(name: name, expected: expected, seen: seen, ok: false) }
            try? await Task.sleep(for: Self.pollInterval)
        }
    }

    private func status(_ url: String) async throws -> (Bool, String) {
        let response = try await http.send("GET", url)
        return (response.status == 200, "\(response.status)")
    }

    /// The JSON object `url` answers with.
    private func json(_ url: String) async throws -> [String: JSONValue] {
        let response = try await http.send("GET", url)
        guard response.status == 200, case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: response.body) else {
            throw StepFailure("\(url) answered \(response.status): \(response.text.prefix(200))")
        }
        return object
    }

    private func stats() async throws -> [String: Int] {
        try await json("\(targets.processor)/stats").compactMapValues(\.int)
    }

    /// The `node` of every GPU's newest sample.
    private func gpuNodes() async throws -> Set<String> {
        Set(try await json("\(targets.processor)/gpu/info").values.compactMap { $0["node"]?.string })
    }

    private func targetsUp(job: String) async throws -> (up: Int, total: Int) {
        let object = try await json("\(targets.prometheus)/api/v1/targets?state=active")
        let active = object["data"]?["activeTargets"]?.array ?? []
        let mine = active.filter { $0["labels"]?["job"]?.string == job }
        return (mine.filter { $0["health"]?.string == "up" }.count, mine.count)
    }

    /// How many log lines (at most 100) Loki returns for `selector` over the last 15 minutes.
    private func logLines(_ loki: String, _ selector: String) async throws -> Int {
        let query = selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? selector
        let object = try await json("\(loki)/loki/api/v1/query_range?query=\(query)&since=15m&limit=100&direction=backward")
        let streams = object["data"]?["result"]?.array ?? []
        return streams.reduce(0) { $0 + ($1["values"]?.array?.count ?? 0) }
    }

    /// The value of an instant query returning one sample, nil when it returns none.
    private func query(_ expression: String) async throws -> Double? {
        try await PrometheusClient(baseURL: targets.prometheus, timeout: http.timeout).instant(expression)
    }
}
