import Engine
import Foundation

/// Runs commands on this machine through the run's `ProcessSupervisor`, so Ctrl-C and a second
/// Ctrl-C reach them like every other child of the run. Output lines go to the step's log.
public struct LocalCommandRunner: CommandRunner {
    /// The run's supervisor (never a private one: cancellation must reach the child).
    public let processes: ProcessSupervisor
    /// Hides secrets in output.
    public let redactor: Redactor
    /// Receives every output line, if set.
    public let log: StepLog?
    /// The child's complete environment.
    public let environment: [String: String]

    /// A runner for `context`'s step: its supervisor, redactor and log.
    public init(_ context: StepContext, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(processes: context.processes, redactor: context.redactor, log: context.log, environment: environment)
    }

    /// A runner with explicit parts (tools and tests outside a run).
    public init(processes: ProcessSupervisor, redactor: Redactor = Redactor(), log: StepLog? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.processes = processes
        self.redactor = redactor
        self.log = log
        self.environment = environment
    }

    public var location: String { "this machine" }

    public func run(_ command: String, timeout: Duration? = nil) async throws -> CommandResult {
        try await run(.shell(command, environment: environment), timeout: timeout)
    }

    /// Runs a program with arguments (no shell).
    public func run(_ command: ProcessCommand, timeout: Duration? = nil) async throws -> CommandResult {
        let processes = processes, redactor = redactor, log = log
        let run: @Sendable () async throws -> CommandResult = {
            CommandResult(try await processes.run(command, redactor: redactor, log: log))
        }
        guard let timeout else { return try await run() }
        return try await withThrowingTaskGroup(of: CommandResult.self) { group in
            group.addTask { try await run() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw StepFailure("\(command.executable) did not finish within \(timeout.formatted) on this machine")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}
