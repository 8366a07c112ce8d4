import App
import ArgumentParser
import Foundation

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The plan file.")
    var plan: String = "plans/sandbox.yaml"

    @Option(name: .long, help: "Root of the state directories; the plan's state lives in <state-dir>/<plan name>/.")
    var stateDir: String = "state"

    @Flag(name: .long, help: "Print JSON (one event per line while running) instead of text.")
    var json = false

    /// The plan and its state. With `storedPlanIfMissing` (commands that work on what a run left:
    /// resume, down, status, unlock), a deleted plan file is replaced by the plan text its last run
    /// stored, with a note on stderr.
    func workspace(storedPlanIfMissing: Bool = false) throws -> Workspace {
        let workspace = try Workspace(planPath: plan, stateRoot: stateDir, storedPlanIfMissing: storedPlanIfMissing)
        if let run = workspace.storedPlanRun {
            FileHandle.standardError.write(Data("""
                provision: note: the plan file \(plan) does not exist; using the plan '\(workspace.plan.name)' \
                as run \(run) stored it (state: \(workspace.stateDirectory.path))\n
                """.utf8))
        }
        return workspace
    }
}
