/// A child process to start: what, with which arguments, environment and working directory.
public struct ProcessCommand: Sendable, Hashable {
    /// The program: a path, or a name looked up in `PATH`.
    public var executable: String
    /// Arguments after the program name.
    public var arguments: [String]
    /// The complete environment of the child.
    public var environment: [String: String]
    /// Working directory; nil keeps the provisioner's.
    public var workingDirectory: String?
    /// How long what is left of this command after `provision` was killed gets, once a later run
    /// finds it, between SIGTERM and SIGKILL; nil: the executor's `leftoverGrace`. For commands
    /// that need long to stop cleanly (terraform waits for the API calls in flight).
    public var stopGrace: Duration?
    /// The signal that asks what is left of this command to stop (to its whole process group);
    /// nil: SIGTERM. Terraform wants SIGINT: its provider plugins ignore it and let terraform
    /// finish the calls in flight and save its state, where SIGTERM would kill them mid-call.
    public var stopSignal: Int32?

    /// Creates a command.
    public init(_ executable: String, _ arguments: [String] = [], environment: [String: String], workingDirectory: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// `/bin/sh -c script`.
    public static func shell(_ script: String, environment: [String: String], workingDirectory: String? = nil) -> ProcessCommand {
        ProcessCommand("/bin/sh", ["-c", script], environment: environment, workingDirectory: workingDirectory)
    }
}

/// How a child process ended.
public struct ProcessResult: Sendable {
    /// Exit code when it exited normally.
    public let exitCode: Int32?
    /// The signal that killed it, if one did.
    public let signal: Int32?
    /// Standard output (up to the capture limit), already redacted.
    public let standardOutput: String
    /// The last lines of standard error, already redacted, for error messages.
    public let standardErrorTail: [String]

    /// Whether it exited with status 0.
    public var succeeded: Bool { exitCode == 0 }

    /// "exit code 3" or "killed by signal 9 (SIGKILL)".
    public var summary: String {
        if let exitCode { return "exit code \(exitCode)" }
        let name = signal.map(Self.signalName) ?? "?"
        return "killed by signal \(signal ?? 0) (\(name))"
    }

    /// The conventional name of `signal` (`SIGKILL`).
    public static func signalName(_ signal: Int32) -> String {
        switch signal {
        case 1: "SIGHUP"
        case 2: "SIGINT"
        case 6: "SIGABRT"
        case 9: "SIGKILL"
        case 11: "SIGSEGV"
        case 13: "SIGPIPE"
        case 15: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
