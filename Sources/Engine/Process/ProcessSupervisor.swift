import CShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts child processes in their own process groups and keeps track of them, so that
/// cancellation sends SIGINT (terraform then saves its state), a grace period later SIGKILL,
/// and a second Ctrl-C can kill every child at once.
///
/// Output is read on a dedicated thread per child (blocking reads stay off the cooperative pool),
/// split into lines, redacted and written to the step's log as it arrives.
public final class ProcessSupervisor: @unchecked Sendable {
    private let lock = NSLock()
    private var live: Set<pid_t> = []
    /// How long a child may take to exit after SIGINT before it gets SIGKILL.
    public let interruptGrace: Duration

    /// Creates a supervisor.
    public init(interruptGrace: Duration = .seconds(10)) {
        self.interruptGrace = interruptGrace
    }

    /// Process ids of the children running now.
    public var running: [pid_t] { lock.withLock { Array(live) } }

    /// Sends `signal` to every running child's process group.
    public func signalAll(_ signal: Int32) {
        for pid in running { kill(-pid, signal) }
    }

    /// Runs `command` to completion. Cancelling the calling task interrupts the child (SIGINT to its
    /// group, SIGKILL after `interruptGrace`) and then throws `CancellationError`.
    /// - Parameters:
    ///   - log: receives every output line, stdout and stderr alike.
    ///   - captureLimit: bytes of standard output kept for the result.
    public func run(_ command: ProcessCommand, redactor: Redactor, log: StepLog?, captureLimit: Int = 1 << 20) async throws -> ProcessResult {
        let path = try Self.resolve(command.executable, environment: command.environment)
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard shim_pipe_cloexec(&outPipe) == 0, shim_pipe_cloexec(&errPipe) == 0 else {
            throw StepFailure("cannot create a pipe: \(String(cString: strerror(errno))); too many open files?")
        }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        var pid: pid_t = 0
        let argv = [path] + command.arguments
        let envp = command.environment.map { "\($0.key)=\($0.value)" }
        let rc = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in
                shim_spawn(&pid, path, cArgv, cEnvp, command.workingDirectory, devNull, outPipe[1], errPipe[1])
            }
        }
        close(devNull)
        close(outPipe[1])
        close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            let reason = String(cString: strerror(rc))
            throw StepFailure("cannot start \(path): \(reason)", retryable: rc != ENOENT && rc != EACCES)
        }
        let child = pid
        lock.withLock { _ = live.insert(child) }
        let reader = OutputReader(pid: child, stdout: outPipe[0], stderr: errPipe[0], redactor: redactor, log: log, captureLimit: captureLimit)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let thread = Thread { continuation.resume(returning: reader.run()) }
                thread.stackSize = 256 * 1024
                thread.start()
            }
        } onCancel: {
            self.interrupt(child)
        }
        lock.withLock { _ = live.remove(child) }
        if Task.isCancelled { throw CancellationError() }
        return result
    }

    private func interrupt(_ pid: pid_t) {
        guard lock.withLock({ live.contains(pid) }) else { return }
        kill(-pid, SIGINT)
        let grace = interruptGrace
        DispatchQueue.global().asyncAfter(deadline: .now() + grace.seconds) { [weak self] in
            guard let self, self.lock.withLock({ self.live.contains(pid) }) else { return }
            kill(-pid, SIGKILL)
        }
    }

    /// The absolute path of `executable`, searched in the child's `PATH` when it has no slash.
    static func resolve(_ executable: String, environment: [String: String]) throws -> String {
        if executable.contains("/") { return executable }
        let path = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw StepFailure("'\(executable)' was not found in PATH (\(path)); install it or give its full path", retryable: false)
    }
}

/// Calls `body` with a NULL-terminated C array of C strings that lives for the call.
public func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
