import ArgumentParser
import Steps

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Converge the world to the plan.",
        discussion: """
            Starts a new run. Steps that succeeded before with the same inputs are skipped; steps whose
            inputs changed, and everything downstream of them, run again; new, failed and interrupted
            steps are checked first and applied only if their check says they are not done.

            With --recheck, succeeded steps are not trusted from the store: each one's check runs
            against the live world (SSH answers, instances exist, hosts run) and the ones that
            drifted are applied again. 'provision status --audit' shows the same drift without
            changing anything.
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

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue the last run where it stopped.",
        discussion: """
            Uses the plan text the run started with (not the file as it is now). Steps that were
            running when the run died are checked first and adopted if their effect is already there.
            If a killed run left a stale lock, 'provision unlock' clears it first.
            """
    )

    @OptionGroup var options: GlobalOptions

    @OptionGroup var runOptions: RunOptions

    func run() async throws {
        try await RunDriver.run(.resume, options: options, parallelism: runOptions.parallelism)
    }
}

struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Tear down what the plan created, in reverse order.",
        discussion: "Runs each step's teardown ('down:' for exec steps) after the steps that depend on it, and records them as destroyed."
    )

    @OptionGroup var options: GlobalOptions

    @OptionGroup var runOptions: RunOptions

    func run() async throws {
        try await RunDriver.run(.down, options: options, parallelism: runOptions.parallelism)
    }
}
