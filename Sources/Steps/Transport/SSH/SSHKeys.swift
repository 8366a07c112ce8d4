import Engine
import Foundation

/// ed25519 key pairs made by the system's `ssh-keygen`.
public enum SSHKeys {
    /// Creates `path` (private, 0600) and `path.pub` unless the private key already exists, outside
    /// a run (tests, tools): a step uses `generate(at:comment:runner:)` with its context's runner.
    /// - Returns: the public key line.
    @discardableResult
    public static func generate(at path: URL, comment: String) async throws -> String {
        try await generate(at: path, comment: comment, runner: LocalCommandRunner(processes: ProcessSupervisor()))
    }

    /// Creates `path` (private, 0600) and `path.pub` unless the private key already exists, running
    /// `ssh-keygen` through `runner`, so the run's cancellation reaches it.
    /// - Returns: the public key line.
    @discardableResult
    public static func generate(at path: URL, comment: String, runner: LocalCommandRunner) async throws -> String {
        let pub = URL(fileURLWithPath: path.path + ".pub")
        if !FileManager.default.fileExists(atPath: path.path) {
            try? FileManager.default.removeItem(at: pub)
            let command = ProcessCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path.path], environment: [:])
            let result = try await runner.run(command)
            guard result.succeeded else {
                throw SSHError.localFile(path: path.path, reason: "ssh-keygen \(result.summary): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        chmod(path.path, 0o600)
        guard let text = try? String(contentsOf: pub, encoding: .utf8) else {
            throw SSHError.localFile(path: pub.path, reason: "the public key is missing; delete \(path.path) to make a new pair")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
