import CShim
import Foundation
import Engine

#if canImport(Glibc)
import Glibc
#endif

/// Test support shared by ProvisionTests and WorkloadTests (a target of its own, Tests/TestSupport).
///
/// Runs the real `provision` binary built by `swift build` (or `$PROVISION_BIN`).
package struct CLI {
    package static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    package static let binary = ProcessInfo.processInfo.environment["PROVISION_BIN"]
        ?? repository.appendingPathComponent(".build/debug/provision").path

    package struct Result {
        package let code: Int32
        package let stdout: String
        package let stderr: String
        package let signaled: Bool

        package init(code: Int32, stdout: String, stderr: String, signaled: Bool) {
            self.code = code
            self.stdout = stdout
            self.stderr = stderr
            self.signaled = signaled
        }

        /// What to print when a run was expected to pass: the end of stderr and, for `--json` runs
        /// (whose errors are events on stdout), the end of stdout.
        package var failure: String {
            let events = stdout.split(separator: "\n").suffix(12).joined(separator: "\n")
            return "stderr: \(stderr.suffix(3000))\nstdout: \(events.suffix(4000))"
        }
    }

    /// A working directory with a plan and a state root, removed afterwards.
    package let directory: URL
    package var environment: [String: String]

    package init(environment: [String: String] = [:]) {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("provision-cli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        self.environment = env
    }

    package func cleanUp() { try? FileManager.default.removeItem(at: directory) }

    package var stateRoot: String { directory.appendingPathComponent("state").path }

    package func write(_ name: String, _ text: String) -> String {
        let url = directory.appendingPathComponent(name)
        try! Data(text.utf8).write(to: url)
        return url.path
    }

    /// A `provision` process started in the background; its output goes to files.
    package final class Running: @unchecked Sendable {
        package let pid: pid_t
        package let stdoutPath: String
        package let stderrPath: String
        package private(set) var status: Int32?

        package init(pid: pid_t, stdoutPath: String, stderrPath: String) {
            self.pid = pid
            self.stdoutPath = stdoutPath
            self.stderrPath = stderrPath
        }

        /// Waits until the process ends and reaps it, polling every 50 ms so that no thread of
        /// the cooperative pool (two on a two-core machine) is held while `provision` works.
        package func finish() async throws {
            while isRunning { try await Task.sleep(for: .milliseconds(50)) }
        }

        /// Blocks until the process ends and reaps it: only where the end is at hand (a child
        /// just killed, or one that has already exited) or in a `defer`, which cannot await.
        package func wait() {
            guard status == nil else { return }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            status = raw
        }

        package var isRunning: Bool {
            guard status == nil else { return false }
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
            return status == nil
        }

        package var signaled: Bool { (status ?? 0) & 0x7f != 0 }
        package var exitCode: Int32 { ((status ?? 0) >> 8) & 0xff }
        package var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
        package var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    }

    /// Starts `provision ARGS` (with `--state-dir` added) without waiting.
    package func start(_ arguments: [String], executable: String = binary, environment extra: [String: String] = [:]) throws -> Running {
        let id = UUID().uuidString
        let out = directory.appendingPathComponent(".out-\(id)").path
        let err = directory.appendingPathComponent(".err-\(id)").path
        let outFD = open(out, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
        let errFD = open(err, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
        let inFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(outFD); close(errFD); close(inFD) }
        let argv = [executable] + arguments + (executable == Self.binary ? ["--state-dir", stateRoot] : [])
        let envp = environment.merging(extra) { $1 }.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { a in
            withCStrings(envp) { e in shim_spawn(&pid, executable, a, e, directory.path, inFD, outFD, errFD) }
        }
        guard rc == 0 else { throw StepFailure("cannot start \(executable): errno \(rc); run 'swift build' and scripts/bootstrap first") }
        return Running(pid: pid, stdoutPath: out, stderrPath: err)
    }

    /// Runs `provision ARGS` to completion without blocking a cooperative thread.
    package func run(_ arguments: [String], executable: String = binary, environment extra: [String: String] = [:]) async throws -> Result {
        let process = try start(arguments, executable: executable, environment: extra)
        try await process.finish()
        return Result(code: process.exitCode, stdout: process.stdout, stderr: process.stderr, signaled: process.signaled)
    }

    /// The store of plan `name`, opened directly.
    package func store(plan name: String) throws -> SQLiteRunStore {
        try SQLiteRunStore(directory: URL(fileURLWithPath: stateRoot).appendingPathComponent(name))
    }
}

/// Polls `condition` every `every` until it holds or `timeout` passes. Poll what costs the
/// system under test something (a document count on nx-27017) seldom: it competes for the CPU.
package func waitUntil(timeout: Duration = .seconds(20), every: Duration = .milliseconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { throw StepFailure("condition not met within \(timeout)") }
        try await Task.sleep(for: every)
    }
}

/// Polls `count` every `every` until it reaches `target`; fails only when it stops rising for
/// `stall` (a loaded machine slows a pipeline down, a stuck one never moves) or after `limit`.
package func waitUntilCount(reaches target: Int, stall: Duration = .seconds(60), limit: Duration = .seconds(900),
                    every: Duration = .seconds(2), _ count: () -> Int?) async throws {
    let start = ContinuousClock.now
    var best = -1
    var lastRise = start
    while true {
        let now = ContinuousClock.now
        let current = count() ?? best
        if current >= target { return }
        if current > best { best = current; lastRise = now }
        guard now - lastRise < stall, now - start < limit else {
            throw StepFailure("reached \(best) of \(target): no progress for \(now - lastRise), \(now - start) in all")
        }
        try await Task.sleep(for: every)
    }
}

