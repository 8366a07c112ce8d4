@testable import App
import CShim
import Engine
import Foundation
import Testing
@testable import Transport

#if canImport(Glibc)
import Glibc
#endif

/// The libssh2 transport against real sshd hosts on loopback addresses.
@Suite(.serialized) struct SSHTransportTests {
    @Test func twoHundredSequentialCommandsShareOneSession() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            for i in 0..<200 {
                let result = try await pool.run("echo \(i)", on: endpoint)
                #expect(result.stdout == "\(i)\n")
            }
            let log = try String(contentsOfFile: host.directory + "/node.log", encoding: .utf8)
            #expect(log.components(separatedBy: "Accepted publickey").count - 1 == 1, "one SSH login for 200 commands")
            await pool.closeAll()
        }
    }

    @Test func twentyHostsInParallelEachAnswerAsThemselvesWithTheirOwnFiles() async throws {
        try await withSandboxNodes { nodes in
            let hosts = try await nodes.start(20)
            let pool = SSHPool(store: nodes.store, parallelism: 20)
            let names = try await withThrowingTaskGroup(of: (String, String).self) { group in
                for host in hosts {
                    group.addTask {
                        let r = try await pool.run("hostname; echo \(host.node) > /etc/whoami; cat /etc/whoami", on: nodes.endpoint(host))
                        return (host.node, r.stdout)
                    }
                }
                return try await group.reduce(into: [String: String]()) { $0[$1.0] = $1.1 }
            }
            #expect(names.count == 20)
            for (node, output) in names { #expect(output == "\(node)\n\(node)\n") }
            #expect(!FileManager.default.fileExists(atPath: "/etc/whoami"), "a node's files stay inside the node")
            await pool.closeAll()
        }
    }

    @Test func severalMegabytesOnStdoutAndStderrTogetherDoNotDeadlock() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let script = "for i in 1 2 3 4; do head -c 1000000 /dev/zero | tr '\\0' e >&2; head -c 1500000 /dev/zero | tr '\\0' o; done"
            let result = try await pool.run(script, on: nodes.endpoint(host), timeout: .seconds(60))
            #expect(result.succeeded)
            #expect(result.standardOutput.count == 6_000_000)
            #expect(result.standardError.count == 4_000_000)
            #expect(result.standardOutput.allSatisfy { $0 == UInt8(ascii: "o") })
            await pool.closeAll()
        }
    }

    @Test func commandKilledBySignalIsReportedAsSignalNotExitCode() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let killed = try await pool.run("kill -TERM $$", on: nodes.endpoint(host))
            #expect(killed.exitSignal == "TERM")
            #expect(killed.exitStatus == nil)
            #expect(killed.summary == "killed by signal TERM")
            let failed = try await pool.run("echo oops >&2; exit 3", on: nodes.endpoint(host))
            #expect(failed.exitStatus == 3 && failed.exitSignal == nil && failed.stderr == "oops\n")
            let after = try await pool.run("echo still usable", on: nodes.endpoint(host))
            #expect(after.stdout == "still usable\n")
            await pool.closeAll()
        }
    }

    @Test func sftpUploadAndDownloadRoundTripBytesExactly() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let payload = Data((0..<3_000_000).map { _ in UInt8.random(in: 0...255) })
            try await pool.upload(payload, to: "/srv/blob", on: nodes.endpoint(host), mode: 0o600)
            let mode = try await pool.run("stat -c %a /srv/blob", on: nodes.endpoint(host))
            #expect(mode.stdout == "600\n")
            let back = try await pool.download("/srv/blob", from: nodes.endpoint(host))
            #expect(back == payload)
            await #expect(throws: SSHError.self) { try await pool.download("/srv/missing", from: nodes.endpoint(host)) }
            await pool.closeAll()
        }
    }

    @Test func transfersOnOneSessionShareOneSFTPSubsystemAndOneThatFailedIsReplaced() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            // sshd serves each SFTP subsystem from a process of its own, alive while the subsystem is.
            func subsystems() async throws -> String {
                try await pool.run("ps -eo args= | grep -c '[i]nternal-sftp' || true", on: endpoint).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(try await subsystems() == "0")
            for index in 0..<5 { try await pool.upload(Data("file \(index)\n".utf8), to: "/srv/f\(index)", on: endpoint) }
            #expect(try await pool.download("/srv/f4", from: endpoint) == Data("file 4\n".utf8))
            #expect(try await subsystems() == "1", "six transfers, one SFTP subsystem, kept for the next")
            await #expect(throws: SSHError.self) { try await pool.download("/srv/missing", from: endpoint) }
            try await pool.upload(Data("after\n".utf8), to: "/srv/after", on: endpoint)
            #expect(try await pool.run("cat /srv/after", on: endpoint).stdout == "after\n", "a failed transfer leaves the next one working")
            await pool.closeAll()
        }
    }

    @Test func changedHostKeyIsAHardErrorNamingBothFingerprints() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let endpoint = nodes.endpoint(host)
            let first = SSHPool(store: nodes.store)
            _ = try await first.run("true", on: endpoint)
            await first.closeAll()
            let pinned = try #require(try nodes.store.pinnedHostKey(endpoint.pinKey))

            let rebuilt = try await nodes.rebuildWithNewHostKey(host)
            let second = SSHPool(store: nodes.store)
            do {
                _ = try await second.run("true", on: nodes.endpoint(rebuilt))
                Issue.record("a changed host key must not be accepted")
            } catch let error as SSHError {
                guard case .hostKeyChanged(_, _, let old, let new) = error else { throw error }
                #expect(old == pinned && new != pinned)
                #expect(error.description.contains(old) && error.description.contains(new) && error.description.contains("provision trust-host"))
                #expect(!error.isRetryable)
            }
            #expect(try nodes.store.pinnedHostKey(endpoint.pinKey) == pinned, "the pin is never replaced silently")
        }
    }

    @Test func stoppedHostIsUnreachableQuicklyAndNamed() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            await host.stop()
            // Keep the address: a socket bound there (not listening) refuses connections, and no
            // parallel test can start a node on it meanwhile.
            let hold = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(hold) }
            // The test's own connections to the stopped sshd linger in TIME_WAIT on this address.
            var reuse: Int32 = 1
            setsockopt(hold, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(22).bigEndian)
            inet_pton(AF_INET, host.address, &address.sin_addr)
            // The node's processes (its sshd) exit just after stop() returns: bind once they have.
            var bound: Int32 = -1
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(hold, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                if bound == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(bound == 0, "bind \(host.address):22: errno \(errno)")
            let pool = SSHPool(store: nodes.store, connectTimeout: .seconds(2))
            let started = ContinuousClock.now
            do {
                _ = try await pool.run("true", on: nodes.endpoint(host))
                Issue.record("a stopped host must not answer")
            } catch let error as SSHError {
                guard case .unreachable = error else { throw error }
                #expect(error.description.contains("node-1"))
                #expect(error.isRetryable)
            }
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }
}

/// ProxyJump through a bastion host.
@Suite(.serialized) struct SSHBastionTests {
    @Test func commandsReachAHostThroughTheBastionWhoseKeyIsPinnedToo() async throws {
        try await withSandboxNodes { nodes in
            let hosts = try await nodes.start(2)
            let (bastion, target) = (hosts[0], hosts[1])
            var endpoint = nodes.endpoint(target)
            endpoint.proxyJump = [nodes.endpoint(bastion)]
            let pool = SSHPool(store: nodes.store)
            for i in 0..<50 {
                let result = try await pool.run("echo \(i) $(hostname)", on: endpoint)
                #expect(result.stdout == "\(i) \(target.node)\n")
            }
            let big = try await pool.run("head -c 3000000 /dev/zero", on: endpoint, timeout: .seconds(60))
            #expect(big.standardOutput.count == 3_000_000)
            let payload = Data((0..<500_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try await pool.upload(payload, to: "/srv/through-bastion", on: endpoint)
            #expect(try await pool.download("/srv/through-bastion", from: endpoint) == payload)
            await pool.closeAll()

            let bastionLog = try String(contentsOfFile: bastion.directory + "/node.log", encoding: .utf8)
            #expect(bastionLog.components(separatedBy: "Accepted publickey").count - 1 == 1, "one bastion login carried every command")
            #expect(try nodes.store.pinnedHostKey(nodes.endpoint(bastion).pinKey) != nil, "the bastion's key is pinned")
            #expect(try nodes.store.pinnedHostKey(endpoint.pinKey) != nil, "the target's key is pinned")
        }
    }
}
