import Engine
import Foundation
import Transport

/// SHA-256 digests of local files, each computed once per process for the file as it is (its
/// size, modification time and inode): the artifacts and K3s install steps of a run ask for the
/// same files once per node, at the same moment.
package actor LocalDigests {
    /// The process's one cache.
    static let shared = LocalDigests()

    /// What identifies one version of a file.
    private struct Version: Hashable {
        let path: String
        let size: Int64
        let modified: Double
        let inode: UInt64
    }

    private var digests: [Version: Task<String, any Error>] = [:]

    /// The digest of `path`'s content, by `sha256sum` run through `here` (the run's supervisor, so
    /// Ctrl-C reaches it); callers asking while it is computed share that computation. A caller
    /// whose shared computation failed because another caller was cancelled computes it again.
    func digest(of path: String, here: LocalCommandRunner) async throws -> String {
        let version = try Self.version(of: path)
        if let known = digests[version], let digest = try? await known.value { return digest }
        let task = Task { try await Self.sha256sum(path, here) }
        digests[version] = task
        do {
            return try await task.value
        } catch {
            if digests[version] == task { digests[version] = nil }
            throw error
        }
    }

    private static func version(of path: String) throws -> Version {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StepFailure("cannot read \(path): \(String(cString: strerror(errno)))") }
        return Version(path: path, size: Int64(info.st_size), modified: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9,
                       inode: UInt64(info.st_ino))
    }

    private static func sha256sum(_ path: String, _ here: LocalCommandRunner) async throws -> String {
        // Not in the step's log: the digest is what the caller reports.
        let quiet = LocalCommandRunner(processes: here.processes, redactor: here.redactor, environment: here.environment)
        let result = try await quiet.run(ProcessCommand("/usr/bin/sha256sum", [path], environment: here.environment), timeout: .seconds(300))
        guard result.succeeded, let digest = result.stdout.split(separator: " ").first, digest.count == 64 else {
            throw StepFailure("cannot compute the SHA-256 of \(path) (\(result.summary)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(digest)
    }
}
