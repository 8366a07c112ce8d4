import App
import ArgumentParser
import Engine
import Foundation

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a step's log: every attempt's output, secrets redacted; for a service, the service's own log.",
        discussion: """
            For a service step of the pipeline (service.processor, service.producer/worker-1, ...) this prints \
            the service's own log from its node (journald or the OpenRC log file); --step-log prints provision's log of \
            the step.

              provision logs node.ready/worker-2 --tail 50
              provision logs service.processor --follow
            """
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The step id, as 'provision status' lists it.")
    var step: String

    @Option(help: "Only the last N lines.")
    var tail: Int?

    @Flag(help: "Keep printing what a service appends to its log, until Ctrl-C (service steps).")
    var follow = false

    @Flag(help: "For a service step, print provision's own log of the step instead of the service's.")
    var stepLog = false

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace()
            let store = workspace.hasStore ? try workspace.openStore() : nil
            let graph = try workspace.plan.graph(secrets: [:])
            var known = graph.order
            if let store { known += try StatusCommand.order(workspace: workspace, store: store, records: try store.steps()) }
            guard known.contains(StepID(step)) else {
                let suggestion = EditDistance.suggestion(for: step, among: Set(known.map(\.rawValue)).sorted()).map { " Did you mean '\($0)'?" } ?? ""
                throw ValidationError("unknown step '\(step)': plan '\(workspace.plan.name)' has no such step.\(suggestion) 'provision status' lists the steps")
            }
            if !stepLog, step.hasPrefix("service."), try workspace.serviceLog(of: StepID(step)) != nil {
                try await workspace.streamServiceLog(of: StepID(step), tail: tail ?? 100, follow: follow) { line in
                    FileHandle.standardOutput.write(Data((line + "\n").utf8))
                }
                return
            }
            if follow { throw ValidationError("--follow applies to service steps (service.*) only") }
            let file = workspace.logFile(for: StepID(step))
            guard let data = FileManager.default.contents(atPath: file.path) else {
                throw ValidationError("step '\(step)' has no log yet in \(workspace.stateDirectory.path): it has not run")
            }
            var text = String(decoding: data, as: UTF8.self)
            if let tail {
                text = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(tail + 1).joined(separator: "\n")
            }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
