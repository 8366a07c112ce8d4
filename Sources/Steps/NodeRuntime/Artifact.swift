import Engine
import Foundation
import Transport

/// A file built here that a node needs (a workload's release build, the librdkafka it loads),
/// uploaded by SFTP unless the node already has the same bytes (SHA-256 on both sides).
public struct Artifact: Sendable, Equatable {
    /// The file here.
    public var local: String
    /// Where it goes on the node.
    public var remote: String
    public var mode: Int32 = 0o755

    public init(local: String, remote: String, mode: Int32 = 0o755) {
        self.local = local
        self.remote = remote
        self.mode = mode
    }

    /// The SHA-256 of the local file, by `sha256sum` run through `here`, computed once per process
    /// for the file as it is (`LocalDigests`): twenty joins uploading the same K3s binary hash it once.
    public func localDigest(_ here: LocalCommandRunner) async throws -> String {
        guard FileManager.default.isReadableFile(atPath: local) else {
            throw StepFailure("\(local) does not exist; build it first (swift build -c release --product producer --product processor)",
                              retryable: false)
        }
        return try await LocalDigests.shared.digest(of: local, here: here)
    }

    /// The SHA-256 of the file on the node, "" when it has none.
    public func remoteDigest(with installer: ServiceInstaller) async throws -> String {
        try await installer.run("sha256sum \(Shell.quoted(remote)) 2>/dev/null | cut -d' ' -f1", .seconds(60)).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Puts the artifact on the node unless it has the same digest there.
    /// - Returns: the artifact's digest.
    @discardableResult
    public func install(with installer: ServiceInstaller, here: LocalCommandRunner, log: @Sendable (String) -> Void) async throws -> String {
        let digest = try await localDigest(here)
        if try await remoteDigest(with: installer) == digest {
            log("\(remote) is already this build")
            return digest
        }
        let directory = (remote as NSString).deletingLastPathComponent
        _ = try await installer.run("mkdir -p \(Shell.quoted(directory))", .seconds(20))
        let data = try Data(contentsOf: URL(fileURLWithPath: local))
        // Upload beside the target and rename: a running program keeps its old file.
        try await installer.upload(data, remote + ".new", mode)
        let moved = try await installer.run("mv -f \(Shell.quoted(remote + ".new")) \(Shell.quoted(remote))", .seconds(20))
        guard moved.succeeded else { throw StepFailure("cannot place \(remote): \(moved.stderr)") }
        log("uploaded \((local as NSString).lastPathComponent) to \(remote) (\(data.count / 1024) KiB)")
        return digest
    }
}
