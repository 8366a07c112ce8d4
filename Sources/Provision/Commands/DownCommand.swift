import ArgumentParser
import Steps

/// `provision down`: tear down what the plan created, in reverse order.
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
