@testable import App
import Engine
import Foundation
import Testing
@testable import Transport

/// Commands on a node outlive a dropped channel; a later attempt of the same step waits for (or
/// stops) what an earlier one left running there before its own command runs. Real sshd hosts on
/// loopback.
@Suite(.serialized) struct RemoteAttemptTests {
    /// A command that notes its start and end (with its pid) in a ledger on the node, then runs
    /// for a minute.
    static let long = #"echo "start $$" >> /tmp/ledger; trap 'echo "end $$" >> /tmp/ledger; exit 143' TERM; sleep 60 & wait"#

    @Test func aLaterAttemptWaitsForTheCommandAnEarlierAttemptLeftRunningOnTheNodeBeforeItsOwnRuns() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let first = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: RemoteAttempt(step: "service.broker", identity: "r1.a1.p100.s1"))
            // The attempt gives up on its command (as a killed provision or a timeout does): the
            // channel goes, the command stays (50 s: room for the checks below on a loaded machine,
            // where a full parallel test run has kept this task from a thread for over 20 s, and
            // still within the later attempt's 60 s wait).
            let short = #"echo "start $$" >> /tmp/ledger; sleep 50; echo "end $$" >> /tmp/ledger"#
            await #expect(throws: SSHError.self) { try await first.run(short, timeout: .seconds(1)) }
            let pid = try await pool.run("head -n 1 /tmp/ledger | cut -d' ' -f2", on: endpoint).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await pool.run("kill -0 \(pid)", on: endpoint).succeeded, "the abandoned command still runs")

            let second = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: RemoteAttempt(step: "service.broker", identity: "r1.a2.p100.s1"))
            let result = try await second.run("cat /tmp/ledger")
            #expect(result.succeeded)
            #expect(result.stdout == "start \(pid)\nend \(pid)\n", "it finished before the next command ran")
            #expect(result.stderr.contains("waiting for pid \(pid)") && !result.stderr.contains("stopping"))
            #expect(try await pool.run("ls /tmp/.provision-children/service.broker", on: endpoint).stdout.isEmpty, "records go when commands end")
            await pool.closeAll()
        }
    }

    @Test func aCommandWhoseChannelIsGoneRunsToItsEndInsteadOfDyingAtItsNextWrite() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let first = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: RemoteAttempt(step: "service.node-exporter", identity: "r1.a1.p1.s1"))
            // Like a service manager's `start`: it prints progress, then finishes its work.
            let chatty = #"echo starting; sleep 2; echo "* Starting unit ..."; echo "* Starting unit ..." >&2; echo done >> /tmp/ledger"#
            await #expect(throws: SSHError.self) { try await first.run(chatty, timeout: .seconds(1)) }
            await pool.closeAll()
            let second = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: RemoteAttempt(step: "service.node-exporter", identity: "r1.a2.p2.s1"))
            #expect(try await second.run("cat /tmp/ledger").stdout == "done\n", "a write to the dropped channel must not kill it half way")
            await pool.closeAll()
        }
    }

    @Test func aLaterAttemptStopsTheCommandAnEarlierAttemptLeftRunningPastTheWait() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let first = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: RemoteAttempt(step: "service.broker", identity: "r1.a1.p100.s1"))
            await #expect(throws: SSHError.self) { try await first.run(Self.long, timeout: .seconds(2)) }
            let pid = try await pool.run("cut -d' ' -f2 /tmp/ledger", on: endpoint).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

            var impatient = RemoteAttempt(step: "service.broker", identity: "r1.a2.p100.s1")
            impatient.awaitSeconds = 1
            let result = try await NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: impatient).run("cat /tmp/ledger")
            #expect(result.succeeded)
            #expect(result.stdout == "start \(pid)\nend \(pid)\n", "stopped (it wrote its end) before the next command ran")
            #expect(result.stderr.contains("stopping pid \(pid), still running after 1 s"))
            #expect(try await pool.run("kill -0 \(pid)", on: endpoint).succeeded == false)
            await pool.closeAll()
        }
    }

    @Test func commandsOfTheSameAttemptAndOfOtherStepsLeaveEachOtherAlone() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let attempt = RemoteAttempt(step: "service.producer/worker-1", identity: "r3.a1.p200.s9")
            let runner = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: attempt)
            await #expect(throws: SSHError.self) { try await runner.run(Self.long, timeout: .seconds(2)) }
            let pid = try await pool.run("cut -d' ' -f2 /tmp/ledger", on: endpoint).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

            let sameAttempt = try await runner.run("kill -0 \(pid) && echo alive")
            let otherStep = NodeCommandRunner(pool: pool, endpoint: endpoint, attempt: RemoteAttempt(step: "service.processor", identity: "r3.a2.p200.s9"))
            let fromOtherStep = try await otherStep.run("kill -0 \(pid) && echo alive")
            #expect(sameAttempt.stdout == "alive\n" && fromOtherStep.stdout == "alive\n")
            #expect(!sameAttempt.stderr.contains("stopping") && !fromOtherStep.stderr.contains("stopping"))
            _ = try await pool.run("kill -TERM -- -\(pid)", on: endpoint)
            await pool.closeAll()
        }
    }

    @Test func anAuditsChecksAreNoAttemptSoTheirCommandsNeverStopAnything() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("remote-attempt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteRunStore(directory: directory)
        func context(_ processes: ProcessSupervisor) -> StepContext {
            StepContext(runID: 4, stepID: "service.producer/worker-1", attempt: 2, upstream: [:], item: nil, stateDirectory: directory,
                        log: StepLog(path: directory.appendingPathComponent("log"), redactor: Redactor()), redactor: Redactor(),
                        processes: processes, store: store)
        }
        #expect(RemoteAttempt(context(ProcessSupervisor())) == nil, "an audit's supervisor records nothing")
        let attempt = try #require(RemoteAttempt(context(ProcessSupervisor().recording(to: NoRegistry()))))
        #expect(attempt.identity.hasPrefix("r4.a2.p\(getpid()).s"))
        #expect(attempt.stepDirectory == "/tmp/.provision-children/service.producer%2Fworker-1")
    }

    struct NoRegistry: ChildRegistry {
        func register(pid: Int32, processStart: String?, command: ProcessCommand, description: String) throws -> Int64 { 0 }
        func unregister(_ token: Int64) {}
    }
}
