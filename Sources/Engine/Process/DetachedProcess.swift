import CShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-lived service process (a local EC2 API, a sandbox node) that outlives the `provision`
/// command that started it: own process group, output to a file, identified by pid *and* kernel
/// start time so that a reused pid is never mistaken for it. Recorded in the state directory or
/// the store so a later command can find and stop it.
public struct DetachedProcess: Codable, Sendable, Hashable {
    /// Process id.
    public let pid: Int32
    /// Kernel start time (`/proc/PID/stat` field 22).
    public let processStart: String?

    /// Identifies an existing process.
    public init(pid: Int32, processStart: String?) {
        self.pid = pid
        self.processStart = processStart
    }

    /// Starts `executable` with `arguments`; stdout and stderr are appended to `logFile`.
    public static func launch(
        _ executable: String, _ arguments: [String], environment: [String: String], logFile: String, workingDirectory: String? = nil
    ) throws -> DetachedProcess {
        let output = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw ProcessLaunchError(executable: executable, reason: "cannot open \(logFile): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(input) }
        var pid: pid_t = 0
        let argv = [executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        let rc = withCStrings(argv) { args in
            withCStrings(envp) { env in
                shim_spawn(&pid, executable, UnsafeMutablePointer(mutating: args), UnsafeMutablePointer(mutating: env), workingDirectory, input, output, output)
            }
        }
        guard rc == 0 else { throw ProcessLaunchError(executable: executable, reason: String(cString: strerror(rc))) }
        return DetachedProcess(pid: pid, processStart: LockHolder.processStart(pid))
    }

    /// Whether the process is still alive (a dead child of ours is reaped here).
    public var isRunning: Bool {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        guard kill(pid, 0) == 0 else { return false }
        guard let fields = ProcStat.fields(pid) else { return false }
        if fields.first == "Z" { return false }
        return processStart == nil || LockHolder.processStart(pid) == processStart
    }

    /// Whether the `provision` that started it is gone: its parent is no longer a `provision`
    /// process (the kernel gave it to init or a subreaper).
    public var isOrphaned: Bool {
        guard let fields = ProcStat.fields(pid), fields.count > 1, let parent = Int32(fields[1]), parent > 1 else { return true }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(parent)/exe")) ?? ""
        return URL(fileURLWithPath: executable).lastPathComponent != "provision"
    }

    /// Sends SIGTERM, then SIGKILL after `grace`, and waits until it is gone.
    public func stop(grace: Duration = .seconds(5)) async {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        guard isRunning else { return }
        kill(pid, SIGKILL)
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

/// A service process could not be started.
public struct ProcessLaunchError: Error, CustomStringConvertible, Sendable {
    public let executable: String
    public let reason: String
    public var description: String { "cannot start \(executable): \(reason)" }
}
