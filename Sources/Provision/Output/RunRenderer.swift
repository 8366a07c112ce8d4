import App
import Engine

/// Shows a run as it happens. Called from several threads at once.
protocol RunRenderer: Sendable {
    /// The run is about to start; `records` hold earlier runs' durations for ETAs.
    func start(run: RunRecord, graph: StepGraph, records: [StepID: StepRecord])
    /// Something happened.
    func event(_ event: Event)
    /// A message from the provisioner itself (Ctrl-C handling).
    func note(_ text: String)
    /// The run ended.
    func finish(_ report: RunReport)
}
