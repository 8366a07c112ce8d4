import ArgumentParser
import Foundation

/// `provision`: a declarative, resumable provisioner.
@main
struct Provision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Turn a declarative plan into running infrastructure, resumably.",
        discussion: """
            A plan (plans/*.yaml) is a graph of idempotent steps. Progress is recorded in SQLite under the \
            state directory, so a run that is interrupted at any point (Ctrl-C, SIGKILL, a lost connection) \
            continues with 'provision resume'.

              provision validate --plan plans/demo.yaml  check a plan without running it
              provision plan --plan plans/demo.yaml      what 'up' would do, and why
              provision up --plan plans/demo.yaml        converge to the plan
              provision status                           what the store knows, step by step
              provision verify                           check the pipeline end to end
              provision report                           one HTML page about the last run
              provision resume                           continue an interrupted run
              provision down                             tear everything down

            Exit codes: 0 done, 1 a step failed, 2 bad plan or arguments, 3 state locked, 4 run store \
            unusable, 5 nothing to resume, 6 drift found by 'status --audit', 130 interrupted. \
            'plan --detailed-exitcode': 0 no changes, 2 changes, 1 error.
            """,
        version: "0.1.0",
        subcommands: [
            UpCommand.self, PlanCommand.self, ResumeCommand.self, StatusCommand.self, DownCommand.self, GraphCommand.self,
            LogsCommand.self, VerifyCommand.self, ReportCommand.self, ValidateCommand.self, UnlockCommand.self, TrustHostCommand.self,
            KubeconfigCommand.self, PortForwardCommand.self, SecretsCommand.self,
        ]
    )

    /// Parses and runs the command like argument-parser's own `main`, except that a usage error
    /// (unknown option, missing value, failed validation) exits 2, as documented, not 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitCodes.invalidInput.rawValue)
            }
            exit(withError: error)
        }
    }
}
