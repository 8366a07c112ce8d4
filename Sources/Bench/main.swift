// provision-bench: measurements that need the library (not tests; scripts/bench-* run them).
//
//   provision-bench ssh [COMMANDS]   commands/s over one pooled libssh2 session versus spawning
//                                    `ssh` per command, against the same sandbox host, same run.
//   provision-bench floor STATE [RUNS]
//                                    the floor of a no-op `up` on the running cluster recorded in
//                                    STATE (a plan's state directory): fresh libssh2 sessions to every
//                                    node at once, one `true` on each; the median of RUNS (7).
import App
import Engine
import Foundation
import Infra
import Transport

#if canImport(Glibc)
import Glibc
#endif

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func benchSSH(commands: Int) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("provision-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let key = directory.appendingPathComponent("id_ed25519")
    let publicKey = try await SSHKeys.generate(at: key, comment: "bench")
    let host = try await SandboxLock.withLock {
        try await SandboxHost.start(.init(instanceID: "i-bench", node: "bench", address: try LoopbackAddress.allocate(port: 22, taken: []),
                                          directory: directory.appendingPathComponent("host"), authorizedKey: publicKey,
                                          cloudInitDelay: .zero, image: nil))
    }
    defer { kill(host.process.pid, SIGKILL) }
    let store = try SQLiteRunStore(directory: directory.appendingPathComponent("state"))
    let pool = SSHPool(store: store)
    let endpoint = SSHEndpoint(name: "bench", host: host.address, user: "root", identityFile: key.path)

    _ = try await pool.run("true", on: endpoint)  // connect once; the pool keeps the session
    let clock = ContinuousClock()
    let pooled = try await clock.measure {
        for _ in 0..<commands { _ = try await pool.run("true", on: endpoint) }
    }
    await pool.closeAll()

    let spawned = max(10, commands / 10)
    let supervisor = ProcessSupervisor()
    let ssh = ProcessCommand("/usr/bin/ssh", [
        "-i", key.path, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "BatchMode=yes", "root@\(host.address)", "true",
    ], environment: ProcessInfo.processInfo.environment)
    let perProcess = try await clock.measure {
        for _ in 0..<spawned {
            let result = try await supervisor.run(ssh, redactor: Redactor(secrets: []), log: nil)
            guard result.succeeded else { throw StepFailure("ssh \(result.summary): \(result.standardErrorTail.joined(separator: " "))") }
        }
    }
    let pooledRate = Double(commands) / seconds(pooled)
    let spawnRate = Double(spawned) / seconds(perProcess)
    print(String(format: "pooled_commands=%d pooled_seconds=%.3f pooled_rate=%.1f spawned_commands=%d spawned_seconds=%.3f spawned_rate=%.1f",
                 commands, seconds(pooled), pooledRate, spawned, seconds(perProcess), spawnRate))
}

/// A no-op `up` cannot take less than this: a handshake with every node (all at once, as `up`
/// makes them) and one round trip on each. Fresh sessions every run; host keys checked against
/// the ones the cluster's store pinned.
func benchFloor(state: URL, runs: Int) async throws {
    let store = try SQLiteRunStore(directory: state)
    let inventory = try ClusterInventory(outputs: try store.steps()[StepID("terraform.apply")]?.outputs ?? [:])
    let key = state.appendingPathComponent("ssh/id_ed25519").path
    let endpoints = try inventory.nodes.map { try $0.endpoint(identityFile: key) }
    guard !endpoints.isEmpty else { throw StepFailure("no node is recorded in \(state.path); run 'provision up' first") }
    let clock = ContinuousClock()
    var samples: [Double] = []
    for _ in 0..<runs {
        let pool = SSHPool(store: store, parallelism: endpoints.count)
        let elapsed = try await clock.measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for endpoint in endpoints {
                    group.addTask {
                        let result = try await pool.run("true", on: endpoint)
                        guard result.succeeded else { throw StepFailure("true on \(endpoint): \(result.summary)") }
                    }
                }
                try await group.waitForAll()
            }
        }
        await pool.closeAll()
        samples.append(seconds(elapsed) * 1000)
    }
    let sorted = samples.sorted()
    print(String(format: "floor_nodes=%d floor_median_ms=%.1f floor_min_ms=%.1f floor_max_ms=%.1f", endpoints.count, sorted[sorted.count / 2],
                 sorted.first ?? 0, sorted.last ?? 0))
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "ssh":
    try await benchSSH(commands: arguments.dropFirst().first.flatMap(Int.init) ?? 500)
case "floor" where arguments.count >= 2:
    try await benchFloor(state: URL(fileURLWithPath: Array(arguments)[1]), runs: arguments.dropFirst(2).first.flatMap(Int.init) ?? 7)
default:
    FileHandle.standardError.write(Data("usage: provision-bench ssh [COMMANDS] | provision-bench floor STATE [RUNS]\n".utf8))
    exit(2)
}
