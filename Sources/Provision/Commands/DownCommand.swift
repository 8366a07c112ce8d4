import App
import ArgumentParser

/// `provision down`: tear down what the plan created, in reverse order; with `--keep-infra`,
/// everything but the machines.
struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Tear down what the plan created, in reverse order.",
        discussion: """
            Runs each step's teardown ('down:' for exec steps) after the steps that depend on it, and records \
            them as destroyed.

            With --keep-infra, the machines stay: the steps that make them (ssh.key, sandbox.cloud, \
            terraform.apply, node.ready) are kept as they are (reported 'kept', not destroyed, so the next \
            'provision up' finds them unchanged), and everything above them is torn down on them: K3s's \
            uninstall scripts run on every worker, then on the server. 'provision resume' of such a run keeps \
            the machines too.
            """
    )

    @OptionGroup var options: GlobalOptions

    @OptionGroup var runOptions: RunOptions

    @Flag(help: "Keep the machines (terraform's instances, the sandbox hosts); tear down only what runs on them.")
    var keepInfra = false

    func run() async throws {
        try await RunDriver.run(keepInfra ? .downKeepingInfra : .down, options: options, parallelism: runOptions.parallelism)
    }
}
