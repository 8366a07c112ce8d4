import Engine
import Foundation
import Infra
import PlanLanguage
import Transport

/// One node as the K3s steps use it: commands (as root: through `sudo -n` when the login user is
/// not root) and file uploads over the run's SSH session to it.
package struct K3sNode: Sendable {
    /// The node's name in the inventory (and in the cluster: `--node-name`).
    package let name: String
    /// The inventory entry.
    package let entry: ClusterInventory.Node
    /// Runs commands on the node.
    let runner: any CommandRunner
    /// Writes a file on the node as the login user.
    let upload: @Sendable (_ data: Data, _ path: String, _ mode: Int32) async throws -> Void
    /// Whether the login user is root (no sudo needed).
    let isRoot: Bool

    /// The node `name` (its inventory `entry`), reached through `runner` and `upload`.
    package init(name: String, entry: ClusterInventory.Node, runner: any CommandRunner,
                 upload: @escaping @Sendable (_ data: Data, _ path: String, _ mode: Int32) async throws -> Void, isRoot: Bool) {
        self.name = name
        self.entry = entry
        self.runner = runner
        self.upload = upload
        self.isRoot = isRoot
    }

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
        try await runner.run(Shell.asRoot(command, loginIsRoot: isRoot), timeout: timeout)
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

    /// One file to place on the node.
    struct Placement: Sendable {
        let data: Data
        let path: String
        let mode: Int32
    }

    /// Places `data` at `path` (mode `mode`, owned by root): uploaded beside it and renamed, so a
    /// running program keeps its old file and a reader never sees half of it.
    func put(_ data: Data, at path: String, mode: Int32) async throws {
        try await put([Placement(data: data, path: path, mode: mode)])
    }

    /// Places every file as `put(_:at:mode:)` does, with one command before the uploads and one
    /// after for all of them.
    func put(_ files: [Placement]) async throws {
        guard !files.isEmpty else { return }
        let directories = Set(files.map { ($0.path as NSString).deletingLastPathComponent }).sorted().map(Shell.quoted).joined(separator: " ")
        let paths = files.map(\.path).joined(separator: ", ")
        if isRoot {
            try await must("mkdir -p \(directories)", "creating the folders of \(paths)")
            for file in files { try await upload(file.data, file.path + ".provision-new", file.mode) }
            let moves = files.map { "mv -f \(Shell.quoted($0.path + ".provision-new")) \(Shell.quoted($0.path))" }
            try await must(moves.joined(separator: " && "), "placing \(paths)")
        } else {
            var installs = ["mkdir -p \(directories)"]
            for file in files {
                let staging = "/tmp/provision-upload-\(UUID().uuidString)"
                try await upload(file.data, staging, 0o600)
                installs.append("install -m \(String(file.mode, radix: 8)) \(staging) \(Shell.quoted(file.path)) && rm -f \(staging)")
            }
            try await must(installs.joined(separator: " && "), "placing \(paths)")
        }
    }

    /// The SHA-256 of each file on the node, in one command; a file the node lacks is left out.
    func digests(of paths: [String]) async throws -> [String: String] {
        guard !paths.isEmpty else { return [:] }
        let output = try await run("sha256sum \(paths.map(Shell.quoted).joined(separator: " ")) 2>/dev/null || true").stdout
        var digests: [String: String] = [:]
        for line in output.split(separator: "\n") {
            // "<digest>  <path>" (two spaces: text mode), as coreutils prints it.
            guard let space = line.firstIndex(of: " ") else { continue }
            let path = line[space...].drop(while: { $0 == " " || $0 == "*" })
            digests[String(path)] = String(line[..<space])
        }
        return digests
    }

    /// Reads a secret file as root ("" when it does not exist) through the runner's `direct`
    /// path: its content never lands in a file on the node or here on its way.
    func readSecret(_ path: String) async throws -> String {
        let command = "cat \(Shell.quoted(path)) 2>/dev/null || true"
        return try await runner.direct.run(Shell.asRoot(command, loginIsRoot: isRoot), timeout: .seconds(60)).stdout
    }

    /// Reads a small file as root; "" when it does not exist.
    package func read(_ path: String) async throws -> String {
        try await run("cat \(Shell.quoted(path)) 2>/dev/null || true").stdout
    }
}
