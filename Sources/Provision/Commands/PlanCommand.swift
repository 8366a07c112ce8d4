import App
import ArgumentParser
import Engine
import Foundation

/// `provision plan`: what `up` would do now, and why, without doing it.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what 'up' would do now, step by step, and why, without changing anything.",
        discussion: """
            For every step of the plan's graph: run, unchanged, check first (new or failed steps whose check \
            decides), or not in plan (recorded, no longer planned: 'up' leaves it). WHY names the input of its \
            fingerprint that changed (a plan key with its old and new value, or an upstream step's outputs), \
            the dependency that runs first, or, with --refresh, the live check that failed. A change of \
            k3s.version also lists the nodes in the order 'up' handles them. The decision is the one 'up' makes.

            Reads the store only: it takes no lock, so it runs while an 'up' does. With --refresh, the \
            read-only check of every step 'up' would check runs live (SSH, HTTP), as 'status --audit' does.

            Exit codes: 0 success. With --detailed-exitcode: 0 nothing would change, 2 something would, \
            1 any error (as terraform plan -detailed-exitcode).
            """
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Exit 0 when nothing would change, 2 when something would, 1 on any error.")
    var detailedExitcode = false

    @Flag(help: "Run the read-only check of every step 'up' would check, against the live world.")
    var refresh = false

    @Option(help: "Most checks running at once with --refresh, 1-256 (default: the plan's, else 10).")
    var parallelism: Int?

    func validate() throws {
        if let parallelism, !RunOptions.parallelismRange.contains(parallelism) {
            throw ValidationError("--parallelism must be from 1 to 256, not \(parallelism)")
        }
    }

    func run() async throws {
        var changes = false
        do {
            try await withExitCodes(json: options.json) {
                let workspace = try options.workspace()
                let plan = try await workspace.plan(refresh: refresh, processes: ProcessSupervisor(), parallelism: parallelism)
                if options.json {
                    FileHandle.standardOutput.write(try PlanText.json(plan, name: workspace.plan.name, maxUnavailable: workspace.plan.k3s?.maxUnavailable ?? 1) + Data("\n".utf8))
                } else {
                    print(PlanText.text(plan, name: workspace.plan.name, maxUnavailable: workspace.plan.k3s?.maxUnavailable ?? 1))
                }
                changes = plan.hasChanges
            }
        } catch let code as ExitCode where detailedExitcode && code != .success {
            throw ExitCodes.planError
        }
        if detailedExitcode && changes { throw ExitCodes.planHasChanges }
    }
}
