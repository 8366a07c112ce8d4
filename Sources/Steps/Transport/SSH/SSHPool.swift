import Engine
import Foundation

/// Reuses SSH sessions per endpoint across commands and bounds how many operations are in
/// flight at once. A session that fails at the transport level is dropped and the next call
/// reconnects.
///
/// Each session runs one operation at a time. A pool made with `sessionsPerHost` above 1 opens
/// another session to an endpoint when a command finds every open one busy (up to that many), so
/// that callers working on one host at once (twenty joins reading and writing on the control
/// plane) do not queue behind each other; a command that finds an idle session takes it. When no
/// more may be opened (or one cannot be), the command waits for the first to be released.
public actor SSHPool {
    /// One session to an endpoint and how many operations use it now.
    private final class Lane {
        let connection: SSHConnection
        var inFlight = 0
        init(_ connection: SSHConnection) { self.connection = connection }
    }

    private var lanes: [SSHEndpoint: [Lane]] = [:]
    /// First handshakes in progress: a second caller for the same endpoint waits for the first's.
    private var opening: [SSHEndpoint: (task: Task<SSHConnection, any Error>, began: Int)] = [:]
    /// Extra sessions being opened per endpoint (beside its first).
    private var openingExtra: [SSHEndpoint: Int] = [:]
    /// Callers waiting for a session to an endpoint to be released.
    private var waiting: [SSHEndpoint: [CheckedContinuation<Void, Never>]] = [:]
    /// Bumped by `closeAll`: a handshake that began before it closes its session when it ends.
    private var generation = 0
    private let pins: HostKeyPins
    private let connectTimeout: Duration
    private let gate: AsyncGate
    /// The most sessions kept to one endpoint.
    public nonisolated let sessionsPerHost: Int

    /// Creates a pool pinning host keys in `store`, with at most `parallelism` operations in
    /// flight at once and at most `sessionsPerHost` sessions to one endpoint (keep it well under
    /// sshd's `MaxStartups`, 10 by default).
    public init(store: any StepStore, parallelism: Int = 10, sessionsPerHost: Int = 1, connectTimeout: Duration = .seconds(10)) {
        self.pins = HostKeyPins(store: store)
        self.connectTimeout = connectTimeout
        self.gate = AsyncGate(limit: parallelism)
        self.sessionsPerHost = max(1, sessionsPerHost)
    }

    /// Most operations in flight at once.
    public nonisolated var parallelism: Int { gate.limit }

    /// The most operations that were ever in flight at once (each on its own session):
    /// never more than `parallelism`.
    public var peakInFlight: Int { get async { await gate.peak } }

    /// How many sessions to `endpoint` are open now (for tests and benchmarks).
    public func sessions(to endpoint: SSHEndpoint) -> Int { lanes[endpoint]?.count ?? 0 }

    /// A new session to `endpoint`, its host key checked against the pins.
    private func handshake(_ endpoint: SSHEndpoint) -> Task<SSHConnection, any Error> {
        let pins = pins, connectTimeout = connectTimeout
        return Task {
            try await SSHConnection.open(endpoint, connectTimeout: connectTimeout) { host, fingerprint in
                try pins.verify(host, fingerprint: fingerprint)
            }
        }
    }

    /// The endpoint's first session, opened (and its host key checked) if needed, unless the pool
    /// was closed since `began` (a warm-up that starts late); callers that ask while it is being
    /// opened share that handshake.
    private func firstLane(_ endpoint: SSHEndpoint, unlessClosedSince began: Int) async throws -> Lane {
        guard began == generation else { throw Self.closed(endpoint) }
        if let existing = lanes[endpoint]?.first { return existing }
        let pending: (task: Task<SSHConnection, any Error>, began: Int)
        if let current = opening[endpoint] {
            pending = current
        } else {
            pending = (handshake(endpoint), generation)
            opening[endpoint] = pending
        }
        let result = await pending.task.result
        // The first caller back files the outcome; a session the pool was closed during is closed.
        if opening[endpoint]?.task == pending.task { opening[endpoint] = nil }
        let connection = try result.get()
        guard pending.began == generation else {
            await connection.close()
            throw Self.closed(endpoint)
        }
        if let filed = lanes[endpoint]?.first(where: { $0.connection === connection }) { return filed }
        if let filed = lanes[endpoint]?.first {
            await connection.close()
            return filed
        }
        let lane = Lane(connection)
        lanes[endpoint] = [lane]
        return lane
    }

    /// A session for one operation on `endpoint`, counted busy until `release`: an idle one, else
    /// a new one while fewer than `sessionsPerHost` are open or opening, else the first to be
    /// released (callers wait in turn, not committed to one busy session).
    private func lease(_ endpoint: SSHEndpoint) async throws -> Lane {
        let began = generation
        while true {
            guard began == generation else { throw Self.closed(endpoint) }
            let open = lanes[endpoint] ?? []
            if open.isEmpty {
                _ = try await firstLane(endpoint, unlessClosedSince: began)
                continue
            }
            if let idle = open.first(where: { $0.inFlight == 0 }) {
                idle.inFlight += 1
                return idle
            }
            if open.count + openingExtra[endpoint, default: 0] < sessionsPerHost {
                openingExtra[endpoint, default: 0] += 1
                let result = await handshake(endpoint).result
                openingExtra[endpoint, default: 1] -= 1
                if case .success(let connection) = result {
                    guard began == generation else {
                        await connection.close()
                        throw Self.closed(endpoint)
                    }
                    let lane = Lane(connection)
                    lane.inFlight = 1
                    lanes[endpoint, default: []].append(lane)
                    return lane
                }
                // No extra session (sshd refused one more, say): wait for one of those there are.
                if lanes[endpoint]?.contains(where: { $0.inFlight == 0 }) == true { continue }
            }
            await withCheckedContinuation { waiting[endpoint, default: []].append($0) }
        }
    }

    /// Ends an operation on `lane`; the first caller waiting for a session to `endpoint` looks again.
    private func release(_ lane: Lane, of endpoint: SSHEndpoint) {
        lane.inFlight -= 1
        wakeOne(endpoint)
    }

    private func wakeAll(_ endpoint: SSHEndpoint) {
        for waiter in waiting.removeValue(forKey: endpoint) ?? [] { waiter.resume() }
    }

    private func wakeOne(_ endpoint: SSHEndpoint) {
        guard var queue = waiting[endpoint], !queue.isEmpty else { return }
        queue.removeFirst().resume()
        waiting[endpoint] = queue.isEmpty ? nil : queue
    }

    private static func closed(_ endpoint: SSHEndpoint) -> SSHError {
        SSHError.channel(endpoint: endpoint.description, operation: "connecting", reason: "the session pool was closed meanwhile")
    }

    /// Starts the handshakes with `endpoints` now, without waiting for them (a run warms the
    /// sessions to the nodes it recorded while it does its own bookkeeping); a handshake that
    /// fails is forgotten, and the first command to that endpoint tries again.
    public func warm(_ endpoints: [SSHEndpoint]) {
        let began = generation
        for endpoint in endpoints {
            Task { _ = try? await self.firstLane(endpoint, unlessClosedSince: began) }
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

    /// Closes every session to `endpoint`, if any.
    public func drop(_ endpoint: SSHEndpoint) async {
        let dropped = lanes.removeValue(forKey: endpoint) ?? []
        wakeAll(endpoint)
        for lane in dropped { await lane.connection.close() }
    }

    /// Closes one session, which failed.
    private func drop(_ lane: Lane, of endpoint: SSHEndpoint) async {
        guard let index = lanes[endpoint]?.firstIndex(where: { $0 === lane }) else { return }
        lanes[endpoint]?.remove(at: index)
        if lanes[endpoint]?.isEmpty == true { lanes[endpoint] = nil }
        await lane.connection.close()
        wakeOne(endpoint)  // a waiter may open a session in its place
    }

    /// Closes every session (and any whose handshake ends after this).
    public func closeAll() async {
        generation += 1
        let closed = lanes.values.joined()
        lanes.removeAll()
        for endpoint in Array(waiting.keys) { wakeAll(endpoint) }  // they find the pool closed
        for lane in closed { await lane.connection.close() }
    }

    private func withConnection<T: Sendable>(_ endpoint: SSHEndpoint, _ body: @Sendable (SSHConnection) async throws -> T) async throws -> T {
        try await gate.acquire()
        defer { Task { await gate.release() } }
        let lane = try await lease(endpoint)
        do {
            let result = try await body(lane.connection)
            release(lane, of: endpoint)
            return result
        } catch let error as SSHError {
            release(lane, of: endpoint)
            if case .channel = error { await drop(lane, of: endpoint) }
            if case .timedOut = error { await drop(lane, of: endpoint) }
            throw error
        } catch {
            release(lane, of: endpoint)
            await drop(lane, of: endpoint)
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
