import ArgumentParser
import Engine
import Foundation
import Steps

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a step's log: every attempt's output, secrets redacted.",
        discussion: "  provision logs k3s.join/worker-2 --tail 50"
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The step id, as 'provision status' lists it.")
    var step: String

    @Option(help: "Only the last N lines.")
    var tail: Int?

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
