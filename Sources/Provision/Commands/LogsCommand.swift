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
            let workspace = try Workspace(planPath: options.plan, stateRoot: options.stateDir)
            let file = workspace.logFile(for: StepID(step))
            guard let data = FileManager.default.contents(atPath: file.path) else {
                var known: [String] = []
                if workspace.hasStore { known = try workspace.openStore().steps().keys.map(\.rawValue).sorted() }
                let suggestion = EditDistance.suggestion(for: step, among: known).map { " Did you mean '\($0)'?" } ?? ""
                throw ValidationError("step '\(step)' has no log yet in \(workspace.stateDirectory.path).\(suggestion)")
            }
            var text = String(decoding: data, as: UTF8.self)
            if let tail {
                text = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(tail + 1).joined(separator: "\n")
            }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
