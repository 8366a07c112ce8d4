import Engine
import Foundation

/// Reuses one SSH session per endpoint across commands and bounds how many hosts are worked on
/// at once. A session that fails at the transport level is dropped and the next call reconnects.
public actor SSHPool {
    private var connections: [SSHEndpoint: SSHConnection] = [:]
    /// Handshakes in progress: a second caller for the same endpoint waits for the first's.
    private var opening: [SSHEndpoint: (task: Task<SSHConnection, any Error>, began: Int)] = [:]
    /// Bumped by `closeAll`: a handshake that began before it closes its session when it ends.
    private var generation = 0
    private let pins: HostKeyPins
    private let connectTimeout: Duration
    private let gate: AsyncGate

    /// Creates a pool pinning host keys in `store`, working on at most `parallelism` hosts at once.
    public init(store: any StepStore, parallelism: Int = 10, connectTimeout: Duration = .seconds(10)) {
        self.pins = HostKeyPins(store: store)
        self.connectTimeout = connectTimeout
        self.gate = AsyncGate(limit: parallelism)
    }

    /// Most hosts worked on at once.
    public nonisolated var parallelism: Int { gate.limit }

    /// The most operations that were ever in flight at once (each on its own host's session):
    /// never more than `parallelism`.
    public var peakInFlight: Int { get async { await gate.peak } }

    /// The pooled connection to `endpoint`, opened (and its host key checked) if needed; callers
    /// that ask while it is being opened share that handshake.
    public func connection(_ endpoint: SSHEndpoint) async throws -> SSHConnection {
        try await connection(endpoint, unlessClosedSince: generation)
    }

    /// The pooled connection, unless the pool was closed since `began` (a warm-up that starts late).
    private func connection(_ endpoint: SSHEndpoint, unlessClosedSince began: Int) async throws -> SSHConnection {
        guard began == generation else {
            throw SSHError.channel(endpoint: endpoint.description, operation: "connecting", reason: "the session pool was closed meanwhile")
        }
        if let existing = connections[endpoint] { return existing }
        let handshake: (task: Task<SSHConnection, any Error>, began: Int)
        if let current = opening[endpoint] {
            handshake = current
        } else {
            let pins = pins, connectTimeout = connectTimeout
            handshake = (Task {
                try await SSHConnection.open(endpoint, connectTimeout: connectTimeout) { host, fingerprint in
                    try pins.verify(host, fingerprint: fingerprint)
                }
            }, generation)
            opening[endpoint] = handshake
        }
        let result = await handshake.task.result
        // The first caller back files the outcome; a session the pool was closed during is closed.
        if opening[endpoint]?.task == handshake.task { opening[endpoint] = nil }
        let connection = try result.get()
        guard handshake.began == generation else {
            await connection.close()
            throw SSHError.channel(endpoint: endpoint.description, operation: "connecting", reason: "the session pool was closed meanwhile")
        }
        if let filed = connections[endpoint] {
            if filed !== connection { await connection.close() }
            return filed
        }
        connections[endpoint] = connection
        return connection
    }

    /// Starts the handshakes with `endpoints` now, without waiting for them (a run warms the
    /// sessions to the nodes it recorded while it does its own bookkeeping); a handshake that
    /// fails is forgotten, and the first command to that endpoint tries again.
    public func warm(_ endpoints: [SSHEndpoint]) {
        let began = generation
        for endpoint in endpoints {
            Task { _ = try? await self.connection(endpoint, unlessClosedSince: began) }
        }
    }

    /// Runs `command` on `endpoint` over the pooled session.
    public func run(_ command: String, on endpoint: SSHEndpoint, stdin: Data? = nil, timeout: Duration? = nil) async throws -> CommandResult {
        try await withConnection(endpoint) { try await $0.run(command, stdin: stdin, timeout: timeout) }
    }

    /// Uploads `data` to `remotePath` on `endpoint`.
    public func upload(_ data: Data, to remotePath: String, on endpoint: SSHEndpoint, mode: Int32 = 0o644) async throws {
        try await withConnection(endpoint) { try await $0.upload(data, to: remotePath, mode: mode) }
    }

    /// Downloads `remotePath` from `endpoint`.
    public func download(_ remotePath: String, from endpoint: SSHEndpoint) async throws -> Data {
        try await withConnection(endpoint) { try await $0.download(remotePath) }
    }

    /// Closes the session to `endpoint`, if any.
    public func drop(_ endpoint: SSHEndpoint) async {
        await connections.removeValue(forKey: endpoint)?.close()
    }

    /// Closes every session (and any whose handshake ends after this).
    public func closeAll() async {
        generation += 1
        for connection in connections.values { await connection.close() }
        connections.removeAll()
    }

    private func withConnection<T: Sendable>(_ endpoint: SSHEndpoint, _ body: @Sendable (SSHConnection) async throws -> T) async throws -> T {
        try await gate.acquire()
        defer { Task { await gate.release() } }
        let connection = try await connection(endpoint)
        do {
            return try await body(connection)
        } catch let error as SSHError {
            if case .channel = error { await drop(endpoint) }
            if case .timedOut = error { await drop(endpoint) }
            throw error
        } catch {
            await drop(endpoint)
            throw error
        }
    }
}

/// A counting semaphore for async code.
actor AsyncGate {
    nonisolated let limit: Int
    private var inUse = 0
    /// The most holders there ever were at once.
    private(set) var peak = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    func acquire() async throws {
        if inUse < limit {
            inUse += 1
            peak = max(peak, inUse)
            return
        }
        await withCheckedContinuation { waiters.append($0) }
        try Task.checkCancellation()
    }

    func release() {
        if waiters.isEmpty {
            inUse -= 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
