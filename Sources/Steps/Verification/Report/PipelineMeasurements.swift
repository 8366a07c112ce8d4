import Foundation
import Transport

/// What `provision report` asks Prometheus about the pipeline over a run: one range query per
/// chart, and each SLO's objective (its `slo:*:objective` recording rule) and measured SLI.
public struct PipelineMeasurements: Sendable {
    /// A chart: a range query and the label that names each of its series.
    public struct ChartQuery: Sendable {
        /// The chart's title.
        public var title: String
        /// The unit of its values.
        public var unit: String
        /// One or more expressions; each result series becomes a line.
        public var expressions: [(expression: String, label: @Sendable ([String: String]) -> String)]
    }

    /// An SLO: its objective series and its SLI over a window of `T` seconds (`$T` in the text).
    public struct ObjectiveQuery: Sendable {
        /// As docs/SLO.md names it.
        public var name: String
        /// The recording rule holding the target (`slo:…:objective`).
        public var objective: String
        /// The SLI over the run, `$T` standing for the run's length as a PromQL duration.
        public var measured: String
    }

    /// The charts: ingest rate per topic, consumer lag, end-to-end latency p50/p99, dead letters,
    /// utilisation per GPU.
    public static let charts: [ChartQuery] = [
        ChartQuery(title: "Ingest rate per topic", unit: "records/s", expressions: [
            ("sum by (topic) (rate(processor_consumed_total{job=\"processor\"}[30s]))", { $0["topic"] ?? "all" }),
        ]),
        ChartQuery(title: "Consumer lag", unit: "records", expressions: [
            ("sum(processor_consumer_lag_records{job=\"processor\"})", { _ in "lag" }),
        ]),
        ChartQuery(title: "End-to-end latency", unit: "seconds", expressions: [
            ("histogram_quantile(0.5, sum by (le) (rate(processor_end_to_end_latency_seconds_bucket{job=\"processor\"}[30s])))", { _ in "p50" }),
            ("histogram_quantile(0.99, sum by (le) (rate(processor_end_to_end_latency_seconds_bucket{job=\"processor\"}[30s])))", { _ in "p99" }),
        ]),
        ChartQuery(title: "Dead letters since the processor started", unit: "records", expressions: [
            ("sum(processor_dead_lettered_total{job=\"processor\"})", { _ in "dead-lettered" }),
        ]),
        ChartQuery(title: "GPU utilisation", unit: "%", expressions: [
            ("processor_gpu_utilisation_percent{job=\"processor\"}", { "\($0["node"] ?? "?") \($0["gpu"] ?? "?")" }),
        ]),
    ]

    /// The SLOs of docs/SLO.md, each SLI computed over the run exactly as its `sli:*:ratio_*` rule
    /// computes it over a fixed window.
    public static let objectives: [ObjectiveQuery] = [
        ObjectiveQuery(name: "Ingest availability", objective: "slo:ingest_availability:objective",
                       measured: "avg_over_time(pipeline:ingest_available:bool[$T])"),
        ObjectiveQuery(name: "Latency (batches written within 0.5 s)", objective: "slo:latency_under_threshold:objective",
                       measured: """
                           sum(increase(processor_write_latency_seconds_bucket{job="processor", le="0.5"}[$T])) \
                           / sum(increase(processor_write_latency_seconds_count{job="processor"}[$T]))
                           """),
        ObjectiveQuery(name: "Data completeness (stored / consumed)", objective: "slo:data_completeness:objective",
                       measured: """
                           sum(increase(processor_written_total{job="processor"}[$T])) \
                           / sum(increase(processor_consumed_total{job="processor"}[$T]))
                           """),
    ]

    /// Where Prometheus is; nil when the plan has none (the charts then say so).
    public var prometheus: PrometheusClient?
    /// Why there is no Prometheus, when `prometheus` is nil.
    public var unavailable: String

    /// Measurements from `prometheus`, or, when it is nil, empty charts that say `unavailable`.
    public init(prometheus: PrometheusClient?, unavailable: String = "Prometheus is not known") {
        self.prometheus = prometheus
        self.unavailable = unavailable
    }

    /// Every chart from `start` to `end`, about 200 points wide; a chart that cannot be read says why.
    public func charts(from start: Date, to end: Date) async -> [ReportDocument.Chart] {
        let span = max(end.timeIntervalSince(start), 1)
        let step = Duration.milliseconds(max(1000, Int64(span * 1000 / 200)))
        var charts: [ReportDocument.Chart] = []
        for query in Self.charts {
            var chart = ReportDocument.Chart(title: query.title, unit: query.unit, query: query.expressions.map(\.expression).joined(separator: "\n"),
                                             start: start, end: end, series: [])
            guard let prometheus else {
                chart.empty = unavailable
                charts.append(chart)
                continue
            }
            do {
                for (expression, label) in query.expressions {
                    for series in try await prometheus.range(expression, start: start, end: end, step: step) {
                        chart.series.append(.init(label: label(series.labels),
                                                  points: series.samples.map { [$0.at.timeIntervalSince(start), $0.value] }))
                    }
                }
                if !chart.hasData { chart.empty = "Prometheus has no samples for this query between the run's start and end" }
            } catch {
                chart.series = []
                chart.empty = "Prometheus at \(prometheus.baseURL) did not answer: \(error)"
            }
            charts.append(chart)
        }
        return charts
    }

    /// Each SLO's objective and its SLI over `start`…`end`.
    public func objectives(from start: Date, to end: Date) async -> [ReportDocument.Objective] {
        let window = "\(max(1, Int(end.timeIntervalSince(start).rounded(.up))))s"
        return await Self.objectives.asyncMap { query in
            guard let prometheus else { return .init(name: query.name, objective: nil, measured: nil, missing: unavailable) }
            do {
                // The objective is configuration: read it now, the run may have ended before the rule's first evaluation.
                var objective = try await prometheus.instant(query.objective)
                if objective == nil {
                    // Not evaluated yet (the rule group runs every 30 s): the loaded rule itself says it, `vector(0.995)`.
                    objective = try await prometheus.recordingRule(query.objective).flatMap(Self.constant)
                }
                let measured = try await prometheus.instant(query.measured.replacingOccurrences(of: "$T", with: window), at: end)
                let missing = objective == nil ? "Prometheus has no \(query.objective) rule: are the pipeline's rules (k8s/base/monitoring/rules) loaded?"
                    : measured == nil ? "no samples of this SLI in the time range (its rules are evaluated every 30 s)" : nil
                return .init(name: query.name, objective: objective, measured: measured, missing: missing)
            } catch {
                return .init(name: query.name, objective: nil, measured: nil, missing: "Prometheus at \(prometheus.baseURL) did not answer: \(error)")
            }
        }
    }
}

extension PipelineMeasurements {
    /// The number of a constant rule, `vector(0.995)` → 0.995.
    static func constant(_ expression: String) -> Double? {
        let text = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("vector("), text.hasSuffix(")") else { return nil }
        return Double(text.dropFirst("vector(".count).dropLast().trimmingCharacters(in: .whitespaces))
    }
}

extension Array where Element: Sendable {
    /// `map` with an asynchronous transform, in order, one element at a time.
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
