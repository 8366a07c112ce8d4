import App
import ArgumentParser

/// `provision resume`: continue the last run with the plan it started with.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue the last run where it stopped.",
        discussion: """
            Uses the plan text the run started with (not the file as it is now). Steps that were running \
            when the run died are checked first and adopted if their effect is already there. If a killed \
            run left a stale lock, 'provision unlock' clears it first.
            """
    )

    @OptionGroup var options: GlobalOptions

    @OptionGroup var runOptions: RunOptions

    func run() async throws {
        try await RunDriver.run(.resume, options: options, parallelism: runOptions.parallelism)
    }
}
