@testable import App
import Engine
import Foundation
@testable import NodeRuntime
import Testing
@testable import Transport

/// OpenRC, from the node image, as the sandbox nodes' service manager: real init scripts rendered
/// from `ServiceUnit`, run under supervise-daemon on a real sandbox node.
@Suite(.serialized) struct ServiceManagerTests {
    static let image = repositoryRoot.appendingPathComponent(".tools/node-image")

    /// The PID of the unit's program (the supervised child, not the supervisor).
    static func childPID(_ pool: SSHPool, _ endpoint: SSHEndpoint, marker: String) async throws -> String {
        try await pool.run("pgrep -f -x 'sleep \(marker)' || true", on: endpoint).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aUnitStartsUnderOpenRCLogsToItsOwnFileAndIsRespawnedAfterSIGKILL() async throws {
        try await withSandboxNodes(image: Self.image) { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            let booted = try await pool.run("rc-status --runlevel && test -e /run/openrc/softlevel", on: endpoint)
            #expect(booted.succeeded, "OpenRC runs on the node: \(booted.stdout)\(booted.stderr)")

            let unit = ServiceUnit(name: "pipeline-echo", description: "test unit", command: "/bin/sh",
                                   arguments: ["-c", "echo \"started as $GREETING\"; exec sleep 4242"], environment: ["GREETING": "hello"])
            #expect(unit.problem == nil)
            try await pool.upload(Data(unit.initScript.utf8), to: unit.scriptPath, on: endpoint, mode: 0o755)
            let started = try await pool.run("rc-service pipeline-echo start && rc-service pipeline-echo status", on: endpoint)
            #expect(started.succeeded, "\(started.stdout)\(started.stderr)")
            #expect(started.stdout.contains("started"))
            var first = ""
            try await eventually(timeout: .seconds(10)) { first = try await Self.childPID(pool, endpoint, marker: "4242"); return !first.isEmpty }

            _ = try await pool.run("kill -9 \(first)", on: endpoint)
            var second = ""
            try await eventually(timeout: .seconds(15)) {
                second = try await Self.childPID(pool, endpoint, marker: "4242")
                return !second.isEmpty && second != first
            }
            #expect(second != first, "the supervisor started a new process")
            let placed = PlacedService(unit: unit, node: RuntimeNode(name: host.node, address: host.address, isControlPlane: true), health: .running)
            let supervised = try await ServiceInstaller(pool: pool, endpoint: endpoint).pid(of: placed)
            let debug = try await pool.run("cat /run/supervise-pipeline-echo.pid; ps -eo pid,ppid,args | grep -v grep | grep -E 'sleep|supervise'", on: endpoint).stdout
            #expect(supervised.map(String.init) == second, "the installer finds the respawned program: \(debug)")
            let log = try await pool.run("cat \(unit.logFile)", on: endpoint).stdout
            #expect(log.components(separatedBy: "started as hello").count - 1 >= 2, "each start logged with its environment: \(log)")
            #expect(!FileManager.default.fileExists(atPath: unit.logFile), "the log stays on the node")

            let stopped = try await pool.run("rc-service pipeline-echo stop; sleep 0.5; pgrep -f -x 'sleep 4242' || echo none", on: endpoint)
            #expect(stopped.stdout.contains("none"), "stop ends the program: \(stopped.stdout)")
            await pool.closeAll()
        }
    }

    @Test func unitsRefuseUnsafeNamesAndEnvironment() {
        #expect(ServiceUnit(name: "Bad Name", description: "", command: "/bin/true").problem != nil)
        #expect(ServiceUnit(name: "ok", description: "", command: "true").problem != nil)
        #expect(ServiceUnit(name: "ok", description: "", command: "/bin/true", environment: ["K": "a b"]).problem != nil)
        #expect(ServiceUnit(name: "ok", description: "", command: "/bin/true", environment: ["K": "$(reboot)"]).problem != nil)
        let unit = ServiceUnit(name: "ok", description: "it's", command: "/bin/echo", arguments: ["a b", "c'd"])
        #expect(unit.problem == nil)
        #expect(unit.initScript.contains("description='it'\\''s'"))
    }
}

/// Polls an asynchronous condition every 100 ms until it holds, or throws after `timeout`.
func eventually(timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw StepFailure("condition not met within \(timeout)")
}
