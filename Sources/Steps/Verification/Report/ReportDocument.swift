import Foundation

/// Everything `provision report` shows about one run, as data: the HTML page renders it and
/// `--json` prints it as is.
public struct ReportDocument: Codable, Sendable, Equatable {
    /// One line chart over the run's time range.
    public struct Chart: Codable, Sendable, Equatable {
        /// One line of a chart.
        public struct Series: Codable, Sendable, Equatable {
            /// What the line is (a topic, a GPU, p99).
            public var label: String
            /// `[seconds from the chart's start, value]`, finite values only.
            public var points: [[Double]]

            /// Creates a series.
            public init(label: String, points: [[Double]]) {
                self.label = label
                self.points = points
            }
        }

        /// The chart's title.
        public var title: String
        /// The unit of the values (the y axis).
        public var unit: String
        /// The PromQL expression the series come from.
        public var query: String
        /// The time range (the x axis).
        public var start: Date
        /// The end of the time range.
        public var end: Date
        /// The lines.
        public var series: [Series]
        /// Why there is no data, when there is none (Prometheus unreachable, no samples in the range).
        public var empty: String?

        /// Creates a chart.
        public init(title: String, unit: String, query: String, start: Date, end: Date, series: [Series], empty: String? = nil) {
            self.title = title
            self.unit = unit
            self.query = query
            self.start = start
            self.end = end
            self.series = series
            self.empty = empty
        }

        /// Some series has a point.
        public var hasData: Bool { series.contains { !$0.points.isEmpty } }
    }

    /// One SLO over the run: its objective, what was measured, the error budget left.
    public struct Objective: Codable, Sendable, Equatable {
        /// The SLO's name (docs/SLO.md).
        public var name: String
        /// The target ratio, from its `slo:*:objective` recording rule; nil when Prometheus has none.
        public var objective: Double?
        /// The SLI over the run's time range; nil without a measurement.
        public var measured: Double?
        /// Why `measured` or `objective` is missing.
        public var missing: String?

        /// Creates an objective's row.
        public init(name: String, objective: Double?, measured: Double?, missing: String? = nil) {
            self.name = name
            self.objective = objective
            self.measured = measured
            self.missing = missing
        }

        /// 1 = untouched, 0 = spent, negative = overspent; nil without a measurement.
        public var budgetRemaining: Double? {
            guard let measured, let objective, objective < 1 else { return nil }
            return 1 - (1 - min(measured, 1)) / (1 - objective)
        }

        private enum CodingKeys: String, CodingKey { case name, objective, measured, missing, budgetRemaining }

        /// Decodes an objective (the derived `budgetRemaining` is ignored).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            objective = try container.decodeIfPresent(Double.self, forKey: .objective)
            measured = try container.decodeIfPresent(Double.self, forKey: .measured)
            missing = try container.decodeIfPresent(String.self, forKey: .missing)
        }

        /// Encodes the objective with its remaining error budget, so `--json` carries it too.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encodeIfPresent(objective, forKey: .objective)
            try container.encodeIfPresent(measured, forKey: .measured)
            try container.encodeIfPresent(missing, forKey: .missing)
            try container.encodeIfPresent(budgetRemaining, forKey: .budgetRemaining)
        }
    }

    /// The plan's name.
    public var plan: String
    /// How the run ended: succeeded, failed, interrupted, or running.
    public var status: String
    /// The run's steps.
    public var timeline: RunTimeline
    /// The checks the run's `verify` step recorded (empty when it did not run in this run).
    public var verify: [PipelineVerifier.Check]
    /// The pipeline over the run, from Prometheus (empty for a plan without the pipeline).
    public var charts: [Chart]
    /// Each SLO over the run (empty for a plan without the pipeline).
    public var objectives: [Objective]
    /// What could not be shown, and why.
    public var notes: [String]
    /// `[start, end]` of the charts and SLOs: the run's, or to a later time asked for; nil without a pipeline.
    public var measured: [Date]?

    /// Creates a report.
    public init(plan: String, status: String, timeline: RunTimeline, verify: [PipelineVerifier.Check], charts: [Chart],
                objectives: [Objective], notes: [String]) {
        self.plan = plan
        self.status = status
        self.timeline = timeline
        self.verify = verify
        self.charts = charts
        self.objectives = objectives
        self.notes = notes
    }
}
