import App
import ArgumentParser

/// `provision up`: converge the world to the plan.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Converge the world to the plan.",
        discussion: """
            Starts a new run. Steps that succeeded before with the same inputs are skipped; steps whose \
            inputs changed, and everything downstream of them, run again; new, failed and interrupted steps \
            are checked first and applied only if their check says they are not done.

            With --recheck, succeeded steps are not trusted from the store: each one's check runs against \
            the live world (SSH answers, instances exist, hosts run) and the ones that drifted are applied \
            again. 'provision status --audit' shows the same drift without changing anything.
            """
    )

    @OptionGroup var options: GlobalOptions

    @OptionGroup var runOptions: RunOptions

    @Flag(help: "Check succeeded steps against the live world and re-apply those that drifted.")
    var recheck = false

    func run() async throws {
        try await RunDriver.run(.up, options: options, parallelism: runOptions.parallelism, recheck: recheck)
    }
}
