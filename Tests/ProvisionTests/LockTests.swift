import Foundation
import TestSupport
import Testing
@testable import Engine

@Suite struct LockTests {
    static let plan = """
        name: locked
        steps:
          - id: wait
            exec:
              run: while [ ! -f release ]; do sleep 0.05; done
        """

    @Test func secondUpFailsAtOnceNamingTheHolderAndAStaleLockNeedsUnlock() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        let first = try cli.start(["up", "--plan", plan])
        defer { if first.isRunning { kill(first.pid, SIGKILL); first.wait() } }
        try await waitUntil { (try? cli.store(plan: "locked").lockHolder()) != nil }

        let started = ContinuousClock.now
        let second = try await cli.run(["up", "--plan", plan])
        // At once: while the holder still runs (it runs until told to stop) and without waiting
        // out any lock timeout. The bound leaves room for a loaded run's process start (6 s seen).
        #expect(first.isRunning, "the holder still holds the lock")
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(second.code == 3)
        #expect(second.stderr.contains("locked by pid \(first.pid) on host"))

        kill(first.pid, SIGKILL)
        first.wait()
        let stale = try await cli.run(["up", "--plan", plan])
        #expect(stale.code == 3)
        #expect(stale.stderr.contains("stale lock"))
        #expect(stale.stderr.contains("provision unlock"))
        let status = try await cli.run(["status", "--plan", plan])
        #expect(status.stdout.contains("STALE"))

        let unlock = try await cli.run(["unlock", "--plan", plan])
        #expect(unlock.code == 0)
        #expect(unlock.stdout.contains("pid \(first.pid)"))
        _ = cli.write("release", "")
        let resume = try await cli.run(["resume", "--plan", plan])
        #expect(resume.code == 0, "\(resume.stderr)")
        #expect(try cli.store(plan: "locked").lockHolder() == nil)
    }

    @Test func unlockRefusesWhileTheHolderIsAlive() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        let first = try cli.start(["up", "--plan", plan])
        defer { if first.isRunning { kill(first.pid, SIGKILL); first.wait() } }
        try await waitUntil { (try? cli.store(plan: "locked").lockHolder()) != nil }
        let unlock = try await cli.run(["unlock", "--plan", plan])
        #expect(unlock.code == 3)
        #expect(unlock.stderr.contains("still running"))
        _ = cli.write("release", "")
        try await first.finish()
        #expect(first.exitCode == 0)
    }

    @Test func ctrlCStopsGracefullyInterruptsTheChildAndResumeFinishes() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", """
            name: interrupt
            steps:
              - id: long
                exec:
                  run: trap 'echo interrupted > got-sigint; exit 130' INT; while [ ! -f release ]; do sleep 0.05; done
              - id: after
                needs: [long]
                exec: {run: echo after > after.txt}
            """)
        let process = try cli.start(["up", "--plan", plan])
        try await waitUntil { (try? cli.store(plan: "interrupt").steps()["long"]?.state) == .running }
        try await Task.sleep(for: .milliseconds(100))
        kill(process.pid, SIGINT)
        try await process.finish()
        #expect(process.exitCode == 130)
        #expect(FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("got-sigint").path))
        let store = try cli.store(plan: "interrupt")
        #expect(try store.steps()["long"]?.state == .cancelled)
        #expect(try store.lockHolder() == nil)
        #expect(try store.lastRun()?.status == .cancelled)

        _ = cli.write("release", "")
        let resume = try await cli.run(["resume", "--plan", plan])
        #expect(resume.code == 0, "\(resume.stderr)")
        #expect(FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("after.txt").path))
    }

    @Test func secondCtrlCKillsAStubbornChildAtOnceAndResumeStillCompletes() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", """
            name: stubborn
            steps:
              - id: stubborn
                exec:
                  run: trap '' INT; echo $$ > child.pid; while [ ! -f release ]; do sleep 0.05; done
                  check: test -f release
            """)
        let process = try cli.start(["up", "--plan", plan])
        let pidFile = cli.directory.appendingPathComponent("child.pid").path
        try await waitUntil { FileManager.default.fileExists(atPath: pidFile) && !((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").isEmpty }
        let child = Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        kill(process.pid, SIGINT)
        // A blocking sleep: an await here can resume seconds late when other tests hold the
        // 2-thread cooperative pool, past the 10 s grace this checks.
        usleep(300_000)
        #expect(process.isRunning, "the first Ctrl-C waits for the child (grace period)")
        let started = ContinuousClock.now
        kill(process.pid, SIGINT)
        // A blocking wait, like the sleep above: the bound times how soon provision exits after
        // the second Ctrl-C (at once), not how soon an await resumes on a busy pool.
        process.wait()
        // Well inside the 10 s grace the first Ctrl-C gave (a loaded run's start has taken seconds to end a process).
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(process.exitCode == 130)
        try await waitUntil { kill(child, 0) != 0 }
        #expect(try cli.store(plan: "stubborn").lockHolder() == nil, "the lock is released even on the second Ctrl-C")
        _ = cli.write("release", "")
        let resume = try await cli.run(["resume", "--plan", plan])
        #expect(resume.code == 0, "\(resume.stderr)")
        #expect(try cli.store(plan: "stubborn").integrityCheck() == "ok")
    }

    @Test func aCommandLeftRunningOnAnotherHostStopsTheRunWithExit3UntilUnlockForceForgetsIt() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", "name: elsewhere\nsteps:\n  - id: one\n    exec:\n      run: echo one >> effects.txt\n")
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
        // What a run on another machine sharing this state directory left recorded.
        _ = try cli.store(plan: "elsewhere").recordChild(ChildRecord(step: "one", run: 1, attempt: 1, pid: 4121, processStart: "9",
                                                                     host: "build-7", command: "/bin/sh -c make"))
        let blocked = try await cli.run(["up", "--plan", plan])
        #expect(blocked.code == 3)
        #expect(blocked.stderr.contains("pid 4121") && blocked.stderr.contains("host build-7") && blocked.stderr.contains("unlock --force"))
        #expect(try await cli.run(["unlock", "--plan", plan]).stdout.contains("not locked"), "without --force nothing is forgotten")
        #expect(try await cli.run(["up", "--plan", plan]).code == 3)

        let forced = try await cli.run(["unlock", "--force", "--plan", plan])
        #expect(forced.code == 0 && forced.stdout.contains("forgot pid 4121 of step 'one' on host build-7"))
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
    }
}
