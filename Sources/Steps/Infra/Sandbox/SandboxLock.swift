import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A machine-wide lock (flock on /tmp/provision-sandbox.lock) held while a loopback address is
/// chosen and its node started, so concurrent provisioners (or parallel tests) never pick the same one.
public enum SandboxLock {
    static let path = "/tmp/provision-sandbox.lock"

    /// Runs `body` holding the lock.
    public static func withLock<T>(_ body: () async throws -> T) async throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return try await body() }
        defer { close(fd) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        defer { flock(fd, LOCK_UN) }
        return try await body()
    }
}
