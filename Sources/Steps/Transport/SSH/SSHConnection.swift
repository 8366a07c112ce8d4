import Foundation

/// An SSH session with an async API: every libssh2 call runs on the connection's own serial
/// queue, off Swift's cooperative pool, one operation at a time.
public final class SSHConnection: @unchecked Sendable {
    /// Where it is connected.
    public let endpoint: SSHEndpoint
    /// The host key the server presented (`SHA256:...`).
    public let hostKeyFingerprint: String
    private let session: SSHSession
    private let queue: DispatchQueue

    /// Connects (through its bastion, if any) and authenticates; `verifyHostKey` sees each host's
    /// key (the bastion's, then the target's) before any credential is sent to it.
    public static func open(
        _ endpoint: SSHEndpoint, connectTimeout: Duration = .seconds(10),
        verifyHostKey: @escaping @Sendable (SSHEndpoint, String) throws -> Void
    ) async throws -> SSHConnection {
        let queue = DispatchQueue(label: "ssh.\(endpoint.host):\(endpoint.port)")
        let session = try await onQueue(queue) {
            try SSHSession(endpoint: endpoint, connectTimeout: connectTimeout, verifyHostKey: verifyHostKey)
        }
        return SSHConnection(endpoint: endpoint, session: session, queue: queue)
    }

    private init(endpoint: SSHEndpoint, session: SSHSession, queue: DispatchQueue) {
        self.endpoint = endpoint
        self.session = session
        self.queue = queue
        self.hostKeyFingerprint = session.hostKeyFingerprint
    }

    /// Runs `command` (through the remote user's shell); a non-zero exit is a result, not an error.
    /// Cancelling the calling task abandons the command and throws `CancellationError`.
    public func run(_ command: String, stdin: Data? = nil, timeout: Duration? = nil) async throws -> CommandResult {
        let cancelled = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await Self.onQueue(queue) { [session] in
                try session.keepalive()
                return try session.exec(command, stdin: stdin, timeout: timeout, isCancelled: cancelled.isSet)
            }
        } onCancel: {
            cancelled.set()
        }
    }

    /// Writes `data` to `remotePath` over SFTP.
    public func upload(_ data: Data, to remotePath: String, mode: Int32 = 0o644) async throws {
        try await Self.onQueue(queue) { [session] in try session.upload(data, to: remotePath, mode: mode) }
    }

    /// Reads `remotePath` over SFTP.
    public func download(_ remotePath: String) async throws -> Data {
        try await Self.onQueue(queue) { [session] in try session.download(remotePath) }
    }

    /// Closes the session.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async { [session] in
                session.close()
                continuation.resume()
            }
        }
    }

    private static func onQueue<T>(_ queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// A flag set from a cancellation handler and read from a blocking loop.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    func isSet() -> Bool { lock.withLock { value } }
}
