import Engine
import Foundation

/// SHA-256 digests of local files, each computed once per process for the file as it is (its
/// size, modification time and inode): the artifacts and K3s install steps of a run ask for the
/// same files once per node, at the same moment.
actor LocalDigests {
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

    /// The digest of `path`'s content; callers asking while it is computed share that computation.
    func digest(of path: String) async throws -> String {
        let version = try Self.version(of: path)
        if let known = digests[version] { return try await known.value }
        let task = Task.detached { try Self.sha256sum(path) }
        digests[version] = task
        do {
            return try await task.value
        } catch {
            digests[version] = nil
            throw error
        }
    }

    private static func version(of path: String) throws -> Version {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StepFailure("cannot read \(path): \(String(cString: strerror(errno)))") }
        return Version(path: path, size: Int64(info.st_size), modified: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9,
                       inode: UInt64(info.st_ino))
    }

    private static func sha256sum(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let digest = String(decoding: data, as: UTF8.self).split(separator: " ").first else {
            throw StepFailure("cannot compute the SHA-256 of \(path)")
        }
        return String(digest)
    }
}
