import Foundation
import Testing
@testable import Engine

@Suite struct ProcessSupervisorTests {
    let environment = ProcessInfo.processInfo.environment

    func log(_ dir: TemporaryDirectory, redactor: Redactor = Redactor()) -> StepLog {
        StepLog(path: dir.url.appendingPathComponent("step.log"), redactor: redactor)
    }

    @Test func capturesStdoutAndExitCode() async throws {
        let dir = TemporaryDirectory()
        let result = try await ProcessSupervisor().run(.shell("echo hello; echo oops >&2; exit 3", environment: environment),
                                                       redactor: Redactor(), log: log(dir))
        #expect(result.exitCode == 3)
        #expect(result.standardOutput == "hello\n")
        #expect(result.standardErrorTail == ["oops"])
        let text = try String(contentsOf: dir.url.appendingPathComponent("step.log"), encoding: .utf8)
        #expect(text.contains("hello") && text.contains("oops"))
    }

    @Test func severalMegabytesOnBothStreamsDoNotDeadlock() async throws {
        let dir = TemporaryDirectory()
        let script = "head -c 4000000 /dev/zero | tr '\\0' a; head -c 4000000 /dev/zero | tr '\\0' b >&2"
        let result = try await ProcessSupervisor().run(.shell(script, environment: environment), redactor: Redactor(), log: log(dir),
                                                       captureLimit: 10_000_000)
        #expect(result.succeeded)
        #expect(result.standardOutput.utf8.count == 4_000_000)
    }

    @Test func commandKilledBySignalIsReportedAsSuch() async throws {
        let result = try await ProcessSupervisor().run(.shell("kill -9 $$", environment: environment), redactor: Redactor(), log: nil)
        #expect(result.exitCode == nil)
        #expect(result.signal == 9)
        #expect(result.summary == "killed by signal 9 (SIGKILL)")
    }

    @Test func cancellationSendsSIGINTToTheChildAndThrows() async throws {
        let dir = TemporaryDirectory()
        let marker = dir.url.appendingPathComponent("interrupted").path
        let supervisor = ProcessSupervisor(interruptGrace: .seconds(5))
        let script = "trap 'echo got-int > \(marker); exit 130' INT; while true; do sleep 0.05; done"
        let task = Task { try await supervisor.run(.shell(script, environment: environment), redactor: Redactor(), log: nil) }
        // The child's start is the premise, not the point: a full parallel run's first seconds once
        // kept the task from starting it within 10 s.
        try await waitUntil(timeout: .seconds(60)) { !supervisor.running.isEmpty }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(supervisor.running.isEmpty)
    }

    @Test func childIgnoringSIGINTIsKilledAfterTheGracePeriod() async throws {
        let supervisor = ProcessSupervisor(interruptGrace: .milliseconds(300))
        let task = Task { try await supervisor.run(.shell("trap '' INT; sleep 30", environment: environment), redactor: Redactor(), log: nil) }
        // The child's start is the premise, not the point (as in the test above: a full parallel
        // run's first seconds kept it from starting within 10 s).
        try await waitUntil(timeout: .seconds(60)) { !supervisor.running.isEmpty }
        let started = ContinuousClock.now
        task.cancel()
        _ = try? await task.value
        // The bound only has to tell a kill from the sleep's own end (30 s): the whole suite runs in
        // parallel in this process, and on a loaded machine the exit is seen seconds late.
        #expect(ContinuousClock.now - started < .seconds(25), "killed before the child's 30 s sleep ends")
    }

    @Test func secretSplitAcrossReadsIsStillRedactedInTheLog() async throws {
        let dir = TemporaryDirectory()
        let secret = "hunter2-very-secret"
        let redactor = Redactor(secrets: [secret])
        let script = "printf 'token=hunter2-'; sleep 0.1; printf 'very-secret done\\n'"
        let result = try await ProcessSupervisor().run(.shell(script, environment: environment), redactor: redactor, log: log(dir, redactor: redactor))
        let text = try String(contentsOf: dir.url.appendingPathComponent("step.log"), encoding: .utf8)
        #expect(!text.contains(secret))
        #expect(text.contains("token=*** done"))
        #expect(!result.standardOutput.contains(secret))
    }

    @Test func missingProgramIsANonRetryableFailure() async throws {
        do {
            _ = try await ProcessSupervisor().run(ProcessCommand("no-such-program-xyz", environment: environment), redactor: Redactor(), log: nil)
            Issue.record("expected a failure")
        } catch let failure as StepFailure {
            #expect(!failure.retryable)
            #expect(failure.message.contains("not found in PATH"))
        }
    }
}
