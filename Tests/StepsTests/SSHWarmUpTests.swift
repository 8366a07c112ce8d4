@testable import App
import Engine
import Foundation
@testable import Infra
import Testing
@testable import Transport

/// The pool's handshakes: one per node however many commands ask for it while it is under way,
/// started early by a run (`warm`), and none left open by a pool that was closed meanwhile.
@Suite(.serialized) struct SSHWarmUpTests {
    /// How many sessions the node's sshd accepted (`sshd -e` logs each to the host's node.log).
    static func accepted(_ host: SandboxHost) -> Int {
        let log = (try? String(contentsOfFile: host.directory + "/node.log", encoding: .utf8)) ?? ""
        return log.components(separatedBy: "Accepted publickey").count - 1
    }

    @Test func commandsAskingDuringAWarmUpHandshakeShareItOneSessionPerNode() async throws {
        try await withSandboxNodes { nodes in
            let hosts = try await nodes.start(2)
            let pool = SSHPool(store: nodes.store)
            let endpoints = hosts.map(nodes.endpoint)
            let before = hosts.map(Self.accepted)
            await pool.warm(endpoints)
            let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for index in 0..<16 {
                    group.addTask { try await pool.run("echo \(index)", on: endpoints[index % 2]) }
                }
                return try await group.reduce(into: [CommandResult]()) { $0.append($1) }
            }
            #expect(results.count == 16 && results.allSatisfy(\.succeeded))
            for (index, host) in hosts.enumerated() {
                #expect(Self.accepted(host) - before[index] == 1, "\(host.node) accepted one session for the warm-up and all eight commands")
            }
            await pool.closeAll()
        }
    }

    @Test func commandsBusyOnOneNodeAtOnceRunSideBySideOnAtMostSessionsPerHostSessions() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store, sessionsPerHost: 3)
            let endpoint = nodes.endpoint(host)
            let before = Self.accepted(host)
            let marks = "/tmp/lanes-\(UUID().uuidString.prefix(8))"
            // Each command marks that it started, holds its session a while, then says how many
            // had started by then: one session at a time, the first would see only itself.
            let seen = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let result = try await pool.run("mkdir -p \(marks) && touch \(marks)/\(index) && sleep 1.5 && ls \(marks) | wc -l", on: endpoint)
                        return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            _ = try await pool.run("rm -rf \(marks)", on: endpoint)
            #expect(seen.count == 8 && seen.allSatisfy { $0 >= 1 })
            #expect(seen.min()! >= 2, "every command overlapped another: \(seen)")
            let opened = Self.accepted(host) - before
            #expect((2...3).contains(opened), "more than one session, never more than three: \(opened)")
            #expect(await pool.sessions(to: endpoint) == opened)
            await pool.closeAll()
        }
    }

    @Test func commandsWaitingForABusySessionEndWhenThePoolClosesInsteadOfWaitingForEver() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            _ = try await pool.run("true", on: endpoint)
            let waiting = (0..<4).map { _ in Task { try await pool.run("sleep 1", on: endpoint) } }
            try await Task.sleep(for: .milliseconds(300))
            await pool.closeAll()
            var ended = 0
            for task in waiting {
                _ = await task.result  // the one running may fail or finish; none may hang
                ended += 1
            }
            #expect(ended == 4)
            #expect(await pool.sessions(to: endpoint) == 0)
        }
    }

    @Test func aHandshakeThatEndsAfterThePoolClosedLeavesNoSession() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            await pool.warm([nodes.endpoint(host)])
            await pool.closeAll()
            // Whatever the warm-up's timing, no session of it stays open: the node's sshd ends up
            // serving no connection from this pool.
            try await eventually(timeout: .seconds(15)) {
                let out = try String(decoding: Self.established(host.address), as: UTF8.self)
                return out.isEmpty
            }
            let after = try await pool.run("true", on: nodes.endpoint(host))
            #expect(after.succeeded, "a later command opens a new session")
            await pool.closeAll()
        }
    }

    /// Established TCP connections to the node's SSH port, as `ss` lists them.
    static func established(_ address: String) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        process.arguments = ["-Htn", "state", "established", "dst", "\(address):22"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }
}
