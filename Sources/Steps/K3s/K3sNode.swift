import Engine
import Foundation

/// One node as the K3s steps use it: commands (as root: through `sudo -n` when the login user is
/// not root) and file uploads over the run's SSH session to it.
struct K3sNode: Sendable {
    /// The node's name in the inventory (and in the cluster: `--node-name`).
    let name: String
    /// The inventory entry.
    let entry: ClusterInventory.Node
    /// Runs commands on the node.
    let runner: any CommandRunner
    /// Writes a file on the node as the login user.
    let upload: @Sendable (_ data: Data, _ path: String, _ mode: Int32) async throws -> Void
    /// Whether the login user is root (no sudo needed).
    let isRoot: Bool

    /// The node's init system: as recorded (the inventory, or what `node.ready` detected), else
    /// asked of the node.
    func initSystem() async throws -> InitSystem {
        if let recorded = entry.initSystem { return recorded }
        return InitSystem(rawValue: try await run(InitSystem.detectCommand, timeout: .seconds(20)).stdout.trimmed) ?? .openrc
    }

    /// Where the K3s service `unit` (`k3s`, `k3s-agent`) logs on this node.
    func serviceLog(_ unit: String) async throws -> ServiceLog {
        ServiceLog(unit: unit, initSystem: try await initSystem())
    }

    /// Runs `command` as root.
    func run(_ command: String, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        try await runner.run(isRoot ? command : "sudo -n sh -c \(ServiceUnit.quoted(command))", timeout: timeout)
    }

    /// Runs `command` as root and fails with `what` and its output unless it exits 0.
    @discardableResult
    func must(_ command: String, _ what: String, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        let result = try await run(command, timeout: timeout)
        guard result.succeeded else {
            throw StepFailure("\(what) on \(name) failed (\(result.summary)): \(String(result.stderr.suffix(600)))\(String(result.stdout.suffix(300)))")
        }
        return result
    }

    /// Places `data` at `path` (mode `mode`, owned by root): uploaded beside it and renamed, so a
    /// running program keeps its old file and a reader never sees half of it.
    func put(_ data: Data, at path: String, mode: Int32) async throws {
        let directory = (path as NSString).deletingLastPathComponent
        if isRoot {
            try await must("mkdir -p \(ServiceUnit.quoted(directory))", "creating \(directory)")
            try await upload(data, path + ".provision-new", mode)
            try await must("mv -f \(ServiceUnit.quoted(path + ".provision-new")) \(ServiceUnit.quoted(path))", "placing \(path)")
        } else {
            let staging = "/tmp/provision-upload-\(UUID().uuidString)"
            try await upload(data, staging, 0o600)
            try await must("mkdir -p \(ServiceUnit.quoted(directory)) && install -m \(String(mode, radix: 8)) \(staging) \(ServiceUnit.quoted(path)) && rm -f \(staging)",
                           "placing \(path)")
        }
    }

    /// The SHA-256 of a file on the node; "" when it has none.
    func digest(of path: String) async throws -> String {
        try await run("sha256sum \(ServiceUnit.quoted(path)) 2>/dev/null | cut -d' ' -f1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Reads a secret file as root ("" when it does not exist) through the runner's `direct`
    /// path: its content never lands in a file on the node or here on its way.
    func readSecret(_ path: String) async throws -> String {
        let command = "cat \(ServiceUnit.quoted(path)) 2>/dev/null || true"
        return try await runner.direct.run(isRoot ? command : "sudo -n sh -c \(ServiceUnit.quoted(command))", timeout: .seconds(60)).stdout
    }

    /// Reads a small file as root; "" when it does not exist.
    func read(_ path: String) async throws -> String {
        try await run("cat \(ServiceUnit.quoted(path)) 2>/dev/null || true").stdout
    }
}
