import Foundation
import Synchronization
import Testing
@testable import Engine

#if canImport(Glibc)
import Glibc
#endif

/// Children of an attempt are recorded before they run, and what a killed run left running is
/// stopped before its step is checked or applied again: real processes, a real store.
@Suite struct LeftoverChildrenTests {
    let environment = ProcessInfo.processInfo.environment

    /// Records registrations in a file the child can see, or refuses them.
    final class FileRegistry: ChildRegistry {
        let marker: URL
        let refuse: Bool
        let calls = Mutex<(registered: [Int32], unregistered: [Int64])>(([], []))
        init(marker: URL, refuse: Bool = false) {
            self.marker = marker
            self.refuse = refuse
        }
        func register(pid: Int32, processStart: String?, command: ProcessCommand, description: String) throws -> Int64 {
            if refuse { throw StepFailure("the store is full") }
            try Data("\(pid)\n".utf8).write(to: marker)
            calls.withLock { $0.registered.append(pid) }
            return Int64(pid)
        }
        func unregister(_ token: Int64) { calls.withLock { $0.unregistered.append(token) } }
    }

    @Test func aRecordedChildIsRegisteredBeforeItsCommandRunsAndForgottenOnceItExits() async throws {
        let dir = TemporaryDirectory()
        let marker = dir.url.appendingPathComponent("registered")
        let registry = FileRegistry(marker: marker)
        // The command prints its own pid and what the registry held when it started.
        let result = try await ProcessSupervisor().recording(to: registry).run(
            .shell("echo $$; cat '\(marker.path)'", environment: environment), redactor: Redactor(), log: nil)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(result.succeeded)
        #expect(lines.count == 2 && lines[0] == lines[1], "the command ran as the recorded pid, after it was recorded: \(lines)")
        #expect(registry.calls.withLock { $0.registered.map(Int64.init) == $0.unregistered })
    }

    @Test func aChildTheRegistryRefusesNeverRunsItsCommand() async throws {
        let dir = TemporaryDirectory()
        let effect = dir.url.appendingPathComponent("effect")
        let registry = FileRegistry(marker: dir.url.appendingPathComponent("registered"), refuse: true)
        await #expect(throws: StepFailure.self) {
            try await ProcessSupervisor().recording(to: registry).run(
                .shell("touch '\(effect.path)'", environment: environment), redactor: Redactor(), log: nil)
        }
        #expect(!FileManager.default.fileExists(atPath: effect.path))
    }

    @Test func aStepsChildrenAreInTheStoreWhileTheyRunAndGoneAfter() async throws {
        let harness = try Harness()
        let store = harness.store
        let watcher = Task { () -> ChildRecord? in
            for _ in 0..<1000 {
                if let child = try? store.children().first { return child }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return nil
        }
        let summary = try await harness.run([.step(CommandStep(id: "build", command: "sleep 1") { _ in })])
        #expect(summary.status == .succeeded)
        let recorded = try #require(await watcher.value)
        #expect(recorded.step == "build" && recorded.attempt == 1 && recorded.host == LockHolder.hostName)
        #expect(recorded.processStart != nil && recorded.command.contains("sleep 1"))
        #expect(try harness.store.children().isEmpty)
    }

    @Test func aCommandsOwnStopSignalAndGraceAreKeptWithItsRecord() async throws {
        let harness = try Harness()
        let recorded = try harness.store.recordChild(ChildRecord(step: "terraform.apply", run: 1, attempt: 1, pid: 4121, processStart: "77",
                                                                 host: LockHolder.hostName, command: "terraform apply", stopGrace: .seconds(90),
                                                                 stopSignal: SIGINT))
        let read = try #require(try harness.store.children().first)
        #expect(read.id == recorded.id && read.step == "terraform.apply" && read.pid == 4121 && read.processStart == "77")
        #expect(read.stopGrace == .seconds(90) && read.stopSignal == SIGINT)
        try harness.store.removeChild(id: recorded.id)
        #expect(try harness.store.children().isEmpty)
    }

    @Test func resumeStopsTheProcessGroupAKilledAttemptLeftBeforeCheckingTheStepAgain() async throws {
        let harness = try Harness()
        // What a SIGKILLed run leaves: the step `running`, its child (a shell waiting on a sleep,
        // one process group) still running and recorded.
        let crashed = try harness.store.beginRun(command: .up, planPath: "test", planText: "")
        try harness.store.markRunning("long", run: crashed.id, attempt: 1, fingerprint: "x")
        let leftover = try DetachedProcess.launch("/bin/sh", ["-c", "sleep 600 & wait"], environment: environment,
                                                  logFile: harness.directory.url.appendingPathComponent("leftover.log").path)
        let group = LeftoverProcessGroup(pid: leftover.pid, processStart: leftover.processStart)
        try await waitFor { group.members.count == 2 }
        _ = try harness.store.recordChild(ChildRecord(step: "long", run: crashed.id, attempt: 1, pid: leftover.pid,
                                                      processStart: leftover.processStart, host: LockHolder.hostName, command: "sh -c sleep"))

        let aliveAtCheck = Mutex<Bool?>(nil)
        let step = CommandStep(id: "long", command: "true") { _ in aliveAtCheck.withLock { $0 = group.isAlive } }
        let summary = try await harness.run([.step(step)], resuming: crashed)
        #expect(summary.status == .succeeded)
        #expect(aliveAtCheck.withLock { $0 } == false, "the step was checked while its previous attempt still ran")
        #expect(!group.isAlive)
        #expect(try harness.store.children().isEmpty)
        let log = try String(contentsOf: harness.directory.url.appendingPathComponent("logs/long.log"), encoding: .utf8)
        #expect(log.contains("pid \(leftover.pid)") && log.contains("stopped it (SIGTERM)"))
    }

    @Test func aChildThatIgnoresSIGTERMIsKilledAfterTheGrace() async throws {
        let dir = TemporaryDirectory()
        let stubborn = try DetachedProcess.launch("/bin/sh", ["-c", "trap '' TERM; while :; do sleep 0.05; done"], environment: environment,
                                                  logFile: dir.url.appendingPathComponent("stubborn.log").path)
        let group = LeftoverProcessGroup(pid: stubborn.pid, processStart: stubborn.processStart)
        try await waitFor { group.isAlive }
        #expect(await group.stop(grace: .milliseconds(300)) == .killed)
        #expect(!group.isAlive)
    }

    @Test func aLeftoverIsAskedToStopWithItsCommandsOwnSignal() async throws {
        let dir = TemporaryDirectory()
        // Like terraform: SIGINT makes it finish and exit, SIGTERM is not what it wants.
        let interruptible = try DetachedProcess.launch("/bin/sh", ["-c", "trap 'exit 0' INT; trap '' TERM; while :; do sleep 0.05; done"],
                                                       environment: environment, logFile: dir.url.appendingPathComponent("int.log").path)
        let group = LeftoverProcessGroup(pid: interruptible.pid, processStart: interruptible.processStart)
        try await waitFor { group.isAlive }
        #expect(await group.stop(signal: SIGINT, grace: .seconds(20)) == .terminated)
    }

    @Test func aReusedPidIsNotMistakenForTheRecordedChild() async throws {
        // This test process is alive, but it started at another time than the record says.
        let group = LeftoverProcessGroup(pid: getpid(), processStart: "1")
        #expect(group.members.isEmpty)
        #expect(await group.stop(grace: .zero) == .alreadyGone)
    }

    private func waitFor(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw StepFailure("condition not met within 10 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// What a killed run left is told apart from what a live run still owns: a process is an
    /// orphan once the `provision` that started it is gone (a shell linked as `provision` here).
    @Test func aProcessIsOrphanedOnlyOnceTheProvisionThatStartedItIsGone() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orphan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let provision = directory.appendingPathComponent("provision")
        // A hard link, not a copy (another test's fork may hold a fresh copy open for writing, and
        // running it then fails: "Text file busy"); /proc/PID/exe names the link.
        let shell = URL(fileURLWithPath: "/bin/sh").resolvingSymlinksInPath()
        do { try FileManager.default.linkItem(at: shell, to: provision) } catch { try FileManager.default.copyItem(at: shell, to: provision) }
        let pidFile = directory.appendingPathComponent("child.pid")
        let parent = try DetachedProcess.launch(provision.path, ["-c", "sleep 600 & echo $! > \"$0\"; wait", pidFile.path],
                                                environment: environment, logFile: directory.appendingPathComponent("log").path)
        // Its premise, not a timing: a full test run's first minutes have kept a child from starting
        // for over 60 s, so the child sleeps far longer than this wait.
        let deadline = ContinuousClock.now + .seconds(120)
        var childPid: Int32?
        while childPid == nil && ContinuousClock.now < deadline {
            childPid = (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if childPid == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        let child = DetachedProcess(pid: try #require(childPid, "the shell never started its child (shell running: \(parent.isRunning), its output: \(log))"),
                                    processStart: LockHolder.processStart(try #require(childPid)))
        #expect(child.isRunning && !child.isOrphaned, "its provision still runs")
        await parent.stop(grace: .zero)
        #expect(child.isRunning && child.isOrphaned, "its provision is gone")
        await child.stop(grace: .zero)
    }
}
