@testable import App
import Foundation
import Testing
@testable import Transport
@testable import Verification

/// Without an answering Prometheus the report still has every chart and SLO, each saying why it is empty.
@Suite struct PipelineMeasurementsTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let end = start.addingTimeInterval(90)

    @Test func withoutPrometheusEveryChartAndObjectiveSaysWhyItIsEmpty() async {
        let measurements = PipelineMeasurements(prometheus: nil, unavailable: "Prometheus at http://x did not answer")
        let charts = await measurements.charts(from: Self.start, to: Self.end)
        #expect(charts.map(\.title) == PipelineMeasurements.charts.map(\.title))
        #expect(charts.allSatisfy { !$0.hasData && $0.empty == "Prometheus at http://x did not answer" && $0.start == Self.start && $0.end == Self.end })
        let objectives = await measurements.objectives(from: Self.start, to: Self.end)
        #expect(objectives.count == 3 && objectives.allSatisfy { $0.measured == nil && $0.budgetRemaining == nil && $0.missing != nil })
    }

    @Test func aPrometheusThatRefusesConnectionsLeavesEachChartEmptyWithTheAddressAndTheCause() async {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let measurements = PipelineMeasurements(prometheus: PrometheusClient(baseURL: "http://127.0.0.1:1", timeout: .seconds(2)))
        let charts = await measurements.charts(from: Self.start, to: Self.end)
        #expect(charts.count == 5)
        for chart in charts { #expect(chart.empty?.contains("Prometheus at http://127.0.0.1:1 did not answer") == true, "\(chart.empty ?? "")") }
    }

    @Test func anObjectiveNotYetEvaluatedIsReadFromItsConstantRule() {
        #expect(PipelineMeasurements.constant("vector(0.995)") == 0.995)
        #expect(PipelineMeasurements.constant(" vector( 0.99 )\n") == 0.99)
        #expect(PipelineMeasurements.constant("sum(up)") == nil)
    }

    @Test func theErrorBudgetLeftIsOneMinusTheErrorsOverTheBudget() {
        let objective = ReportDocument.Objective(name: "x", objective: 0.99, measured: 0.995)
        #expect(abs((objective.budgetRemaining ?? 0) - 0.5) < 1e-9, "half of the 1 % budget spent")
        #expect(ReportDocument.Objective(name: "x", objective: 0.99, measured: 0.97).budgetRemaining.map { $0 < 0 } == true, "overspent is negative")
        #expect(ReportDocument.Objective(name: "x", objective: nil, measured: 0.97).budgetRemaining == nil)
    }
}
