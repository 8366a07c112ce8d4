import CShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts child processes in their own process groups and keeps track of them, so that
/// cancellation sends SIGINT (terraform then saves its state), a grace period later SIGKILL,
/// and a second Ctrl-C can kill every child at once.
///
/// A supervisor made by `recording(to:)` also records each child in a `ChildRegistry` before the
/// child runs its command: the child is started held at a gate (a shell reading one line from a
/// socket on its stdin) and let through only once the registry has it. If `provision` is killed in
/// between, the gate closes and the child exits without running anything, so every child that
/// ever ran was recorded and a later run can stop it.
///
/// Output is read on a dedicated thread per child (blocking reads stay off the cooperative pool),
/// split into lines, redacted and written to the step's log as it arrives.
public final class ProcessSupervisor: @unchecked Sendable {
    /// The children of a supervisor and of every view `recording(to:)` made of it.
    private final class LiveChildren: @unchecked Sendable {
        let lock = NSLock()
        var pids: Set<pid_t> = []
    }

    private let live: LiveChildren
    private let registry: (any ChildRegistry)?
    /// How long a child may take to exit after SIGINT before it gets SIGKILL.
    public let interruptGrace: Duration

    /// Creates a supervisor.
    public convenience init(interruptGrace: Duration = .seconds(10)) {
        self.init(live: LiveChildren(), registry: nil, interruptGrace: interruptGrace)
    }

    private init(live: LiveChildren, registry: (any ChildRegistry)?, interruptGrace: Duration) {
        self.live = live
        self.registry = registry
        self.interruptGrace = interruptGrace
    }

    /// The same supervisor (same children, same Ctrl-C handling) that records every child it
    /// starts in `registry` before the child runs, and forgets it once it has exited.
    public func recording(to registry: any ChildRegistry) -> ProcessSupervisor {
        ProcessSupervisor(live: live, registry: registry, interruptGrace: interruptGrace)
    }

    /// Whether this supervisor records its children (a run's step attempt; not an audit's check).
    public var isRecording: Bool { registry != nil }

    /// Process ids of the children running now.
    public var running: [pid_t] { live.lock.withLock { Array(live.pids) } }

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
        // The gate: the child's stdin is one end of a socket pair, and the shell in front of the
        // command waits for "go" on it (socket, not pipe: `send` can refuse SIGPIPE).
        var gate: [Int32] = [-1, -1]
        if registry != nil, socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &gate) != 0 {
            close(outPipe[0]); close(outPipe[1]); close(errPipe[0]); close(errPipe[1])
            throw StepFailure("cannot create a socket pair: \(String(cString: strerror(errno))); too many open files?")
        }
        let input = registry != nil ? gate[1] : open("/dev/null", O_RDONLY | O_CLOEXEC)
        let program = registry != nil ? "/bin/sh" : path
        var pid: pid_t = 0
        let argv = (registry != nil ? ["/bin/sh", "-c", Self.gateScript, path] : [path]) + command.arguments
        let envp = command.environment.map { "\($0.key)=\($0.value)" }
        let rc = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in
                shim_spawn(&pid, program, cArgv, cEnvp, command.workingDirectory, input, outPipe[1], errPipe[1])
            }
        }
        close(input)
        close(outPipe[1])
        close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            if gate[0] >= 0 { close(gate[0]) }
            let reason = String(cString: strerror(rc))
            throw StepFailure("cannot start \(path): \(reason)", retryable: rc != ENOENT && rc != EACCES)
        }
        let child = pid
        var token: Int64?
        if let registry {
            do {
                let line = redactor.redact(([command.executable] + command.arguments).joined(separator: " "))
                token = try registry.register(pid: child, processStart: LockHolder.processStart(child), command: command,
                                              description: String(line.prefix(300)))
            } catch {
                // The gate closes unopened: the child exits without running the command.
                close(gate[0])
                close(outPipe[0])
                close(errPipe[0])
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                throw error
            }
            _ = send(gate[0], "go\n", 3, Int32(MSG_NOSIGNAL))
            close(gate[0])
        }
        live.lock.withLock { _ = live.pids.insert(child) }
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
        live.lock.withLock { _ = live.pids.remove(child) }
        if let token { registry?.unregister(token) }
        if Task.isCancelled { throw CancellationError() }
        return result
    }

    private func interrupt(_ pid: pid_t) {
        guard live.lock.withLock({ live.pids.contains(pid) }) else { return }
        kill(-pid, SIGINT)
        let grace = interruptGrace
        // A thread of its own, not the global dispatch queue: when blocking work fills that queue
        // (libcurl and libssh2 calls run there), the SIGKILL would come late.
        let children = live
        let thread = Thread {
            Thread.sleep(forTimeInterval: grace.seconds)
            guard children.lock.withLock({ children.pids.contains(pid) }) else { return }
            kill(-pid, SIGKILL)
        }
        thread.stackSize = 64 * 1024
        thread.start()
    }

    /// The shell in front of a recorded child: wait for "go" on stdin (EOF or anything else: exit
    /// without running the command), then become the command, with /dev/null as its stdin.
    static let gateScript = #"IFS= read -r gate || exit 125; [ "$gate" = go ] || exit 125; exec "$0" "$@" </dev/null"#

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
