import CSSH2
import CShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A local port forward (`ssh -L 127.0.0.1:PORT:HOST:HOSTPORT`): listens on 127.0.0.1 and, for each
/// connection accepted, opens a `direct-tcpip` channel to `host:port` through one SSH session to a
/// node, copying bytes both ways. Many connections are served at once, over that one session.
///
/// One thread owns the session (libssh2 is not thread-safe per session) in non-blocking mode, the
/// listening socket and every accepted connection, and waits in `poll(2)` on all of them and on the
/// session's socket in the directions `libssh2_session_block_directions` names. `close()` stops it:
/// the listening socket is closed first, then every connection, channel and the session.
public final class SSHPortForward: @unchecked Sendable {
    /// The local port it listens on (127.0.0.1).
    public let localPort: Int
    /// Where each connection goes, as the node resolves it.
    public let targetHost: String
    /// The target's port.
    public let targetPort: Int
    /// The node the session goes to.
    public let endpoint: SSHEndpoint

    private let session: SSHSession
    private let listener: Int32
    private let wake: (read: Int32, write: Int32)
    private let lock = NSLock()
    private var stopping = false
    private var ended = false
    private var failureText: String?
    private var waiters: [CheckedContinuation<String?, Never>] = []
    private let finished = DispatchSemaphore(value: 0)
    private var served = 0

    /// POLLRDHUP: the peer closed its side (Linux; not imported into Swift).
    private static let peerClosed: Int16 = 0x2000

    /// Most bytes held for one direction of one connection before its reader waits.
    private static let bufferLimit = 256 * 1024

    /// Connects to `endpoint` (host key checked against `pins`, as every SSH session is), listens on
    /// 127.0.0.1:`localPort` (0: a free port) and starts forwarding to `host:port`. Blocks while
    /// connecting: call it off Swift's cooperative pool (see `open`).
    /// - Throws: `SSHError` when the node cannot be reached or refuses us; `PortForwardError` when
    ///   the local port is taken.
    public init(endpoint: SSHEndpoint, to host: String, port: Int, localPort: Int = 0, pins: HostKeyPins, connectTimeout: Duration = .seconds(10)) throws {
        self.endpoint = endpoint
        targetHost = host
        targetPort = port
        let listener = try Self.listen(port: localPort)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        self.localPort = Int(UInt16(bigEndian: bound.sin_port))
        do {
            session = try SSHSession(endpoint: endpoint, connectTimeout: connectTimeout) { endpoint, fingerprint in
                try pins.verify(endpoint, fingerprint: fingerprint)
            }
        } catch {
            Glibc.close(listener)
            throw error
        }
        self.listener = listener
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else {
            Glibc.close(listener)
            session.close()
            throw PortForwardError(description: "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        for fd in pipe { Self.setNonBlocking(fd) }
        wake = (pipe[0], pipe[1])
        let thread = Thread { [self] in
            pump()
            finish()
        }
        thread.name = "port-forward \(localPort)"
        thread.stackSize = 512 * 1024
        thread.start()
    }

    /// `init` on a thread of its own, so that connecting never blocks Swift's cooperative pool.
    public static func open(endpoint: SSHEndpoint, to host: String, port: Int, localPort: Int = 0, pins: HostKeyPins) async throws -> SSHPortForward {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try SSHPortForward(endpoint: endpoint, to: host, port: port, localPort: localPort, pins: pins) })
            }
        }
    }

    /// How many connections have been accepted so far.
    public var connectionsServed: Int { lock.withLock { served } }

    /// Stops forwarding and waits until the port is closed and the session ended; safe to call twice.
    public func close() {
        signalStop()
        if !lock.withLock({ ended }) {
            finished.wait()
            finished.signal()
        }
    }

    /// `close()` for async code: stops forwarding and awaits the end without blocking a thread of
    /// Swift's cooperative pool.
    public func shutDown() async {
        signalStop()
        _ = await stopped()
    }

    /// Asks the pump thread to stop (once).
    private func signalStop() {
        let first = lock.withLock { () -> Bool in
            defer { stopping = true }
            return !stopping
        }
        if first {
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)
        }
    }

    /// Waits until forwarding stops: nil after `close()`, or why it stopped on its own (the SSH
    /// connection to the node was lost).
    public func stopped() async -> String? {
        await withCheckedContinuation { continuation in
            let done = lock.withLock { () -> Bool in
                if ended { return true }
                waiters.append(continuation)
                return false
            }
            if done { continuation.resume(returning: lock.withLock { failureText }) }
        }
    }

    deinit {
        close()
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    private func finish() {
        let (waiting, failure) = lock.withLock { () -> ([CheckedContinuation<String?, Never>], String?) in
            ended = true
            defer { waiters.removeAll() }
            return (waiters, failureText)
        }
        finished.signal()
        waiting.forEach { $0.resume(returning: failure) }
    }

    // MARK: The forwarding thread

    /// One accepted connection and its channel.
    private final class Link {
        let client: Int32
        let peerPort: Int32
        var channel: OpaquePointer?
        /// Bytes read from the client, not yet written to the channel.
        var toChannel: [UInt8] = []
        /// Bytes read from the channel, not yet written to the client.
        var toClient: [UInt8] = []
        var clientEOF = false
        var eofSent = false
        var channelEOF = false
        var clientShut = false
        var done = false

        init(client: Int32, peerPort: Int32) {
            self.client = client
            self.peerPort = peerPort
        }
    }

    private func pump() {
        guard let raw = session.handle else {
            Glibc.close(listener)
            return
        }
        session.setBlocking(false)
        // Keepalives without a reply: nothing would read one while no connection is open.
        libssh2_keepalive_config(raw, 0, 15)
        var links: [Link] = []
        var closing: [OpaquePointer] = []
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        var busy = false
        var lastKeepalive = ContinuousClock.now

        func fatal(_ what: String) {
            lock.withLock { failureText = "the SSH connection to \(endpoint) was lost (\(what)): \(session.lastErrorText)" }
        }
        /// Whether a libssh2 return code means the session itself is gone.
        func sessionBroken(_ rc: Int) -> Bool {
            [LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_SOCKET_TIMEOUT,
             LIBSSH2_ERROR_TIMEOUT].map(Int.init).contains(rc)
        }

        loop: while true {
            // Wait for the wake pipe, a new connection, the session's socket (readable while a
            // channel opens or a connection has room for more data; in the directions libssh2 is
            // blocked on; its peer's close always) and each client.
            var fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0), pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            var sessionEvents = Self.peerClosed
            if links.contains(where: { !$0.done && ($0.channel == nil || (!$0.channelEOF && $0.toClient.count < Self.bufferLimit)) }) {
                sessionEvents |= Int16(POLLIN)
            }
            if libssh2_session_block_directions(raw) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { sessionEvents |= Int16(POLLOUT) }
            fds.append(pollfd(fd: session.socketDescriptor, events: sessionEvents, revents: 0))
            for link in links {
                var events: Int16 = 0
                if link.channel != nil && !link.clientEOF && link.toChannel.count < Self.bufferLimit { events |= Int16(POLLIN) }
                if !link.toClient.isEmpty { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: link.client, events: events, revents: 0))
            }
            // After progress libssh2 may hold data it already read from the socket: look again at once.
            _ = poll(&fds, nfds_t(fds.count), busy ? 0 : 200)
            busy = false
            if lock.withLock({ stopping }) { break loop }
            if fds[2].revents & (Self.peerClosed | Int16(POLLERR | POLLHUP | POLLNVAL)) != 0 {
                fatal("the node closed it")
                break loop
            }

            // New connections.
            while true {
                var peer = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let fd = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) } }
                guard fd >= 0 else { break }
                Self.setNonBlocking(fd)
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                links.append(Link(client: fd, peerPort: Int32(UInt16(bigEndian: peer.sin_port))))
                lock.withLock { served += 1 }
                busy = true
            }

            // Channels open one at a time: libssh2 keeps a single direct-tcpip state per session.
            if let opening = links.first(where: { $0.channel == nil && !$0.done }) {
                let channel = libssh2_channel_direct_tcpip_ex(raw, targetHost, Int32(targetPort), "127.0.0.1", opening.peerPort)
                if let channel {
                    opening.channel = channel
                    busy = true
                } else {
                    let rc = Int(libssh2_session_last_errno(raw))
                    if rc != Int(LIBSSH2_ERROR_EAGAIN) {
                        if sessionBroken(rc) { fatal("opening a channel to \(targetHost):\(targetPort)"); break loop }
                        // The node could not connect to the target: this client sees its connection closed.
                        opening.done = true
                        busy = true
                    }
                }
            }

            for link in links where !link.done {
                guard let channel = link.channel else { continue }
                // client → channel
                if !link.clientEOF && link.toChannel.count < Self.bufferLimit {
                    let n = read(link.client, &buffer, buffer.count)
                    if n > 0 { link.toChannel.append(contentsOf: buffer[0..<n]); busy = true }
                    else if n == 0 || errno != EAGAIN { link.clientEOF = true; busy = true }
                }
                while !link.toChannel.isEmpty {
                    let written = link.toChannel.withUnsafeBufferPointer { raw in
                        libssh2_channel_write_ex(channel, 0, UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self), raw.count)
                    }
                    if written == Int(LIBSSH2_ERROR_EAGAIN) || written == 0 { break }
                    if written < 0 {
                        if sessionBroken(written) { fatal("writing to a channel"); break loop }
                        link.done = true
                        break
                    }
                    link.toChannel.removeFirst(written)
                    busy = true
                }
                if link.clientEOF && link.toChannel.isEmpty && !link.eofSent {
                    let rc = libssh2_channel_send_eof(channel)
                    if rc != LIBSSH2_ERROR_EAGAIN { link.eofSent = true; busy = true }
                }
                // channel → client
                while !link.channelEOF && link.toClient.count < Self.bufferLimit {
                    let n = buffer.withUnsafeMutableBufferPointer { raw in
                        shim_libssh2_channel_read(channel, UnsafeMutableRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self), raw.count)
                    }
                    if n > 0 { link.toClient.append(contentsOf: buffer[0..<n]); busy = true; continue }
                    if n == Int(LIBSSH2_ERROR_EAGAIN) { break }
                    if n < 0 {
                        if sessionBroken(n) { fatal("reading from a channel"); break loop }
                        link.channelEOF = true
                    } else if libssh2_channel_eof(channel) == 1 {
                        link.channelEOF = true
                    }
                    busy = true
                    break
                }
                while !link.toClient.isEmpty {
                    // send with MSG_NOSIGNAL: a client that went away must not SIGPIPE the process.
                    let n = link.toClient.withUnsafeBytes { send(link.client, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n > 0 { link.toClient.removeFirst(n); busy = true; continue }
                    if n < 0 && errno == EAGAIN { break }
                    link.done = true // the client went away
                    break
                }
                if link.channelEOF && link.toClient.isEmpty && !link.clientShut {
                    shutdown(link.client, Int32(SHUT_WR))
                    link.clientShut = true
                }
                if link.channelEOF && link.toClient.isEmpty && link.clientEOF && link.eofSent { link.done = true }
            }

            // Finished connections: the client closed, the channel freed (again while libssh2 says EAGAIN).
            for link in links where link.done {
                Glibc.close(link.client)
                if let channel = link.channel { closing.append(channel) }
            }
            links.removeAll { $0.done }
            closing = closing.filter { libssh2_channel_free($0) == LIBSSH2_ERROR_EAGAIN }

            if ContinuousClock.now - lastKeepalive > .seconds(5) {
                lastKeepalive = .now
                var next: Int32 = 0
                let rc = libssh2_keepalive_send(raw, &next)
                if rc != 0 && rc != LIBSSH2_ERROR_EAGAIN && sessionBroken(Int(rc)) { fatal("keepalive"); break loop }
            }
        }

        // The port first, so that nothing new connects while the rest closes.
        Glibc.close(listener)
        for link in links {
            Glibc.close(link.client)
            if let channel = link.channel { closing.append(channel) }
        }
        session.setBlocking(true)
        libssh2_session_set_timeout(raw, 2000)
        for channel in closing { _ = libssh2_channel_free(channel) }
        session.close()
    }

    /// Non-blocking and closed on exec.
    private static func setNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// A listening TCP socket on 127.0.0.1:`port` (0: one the kernel picks).
    private static func listen(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw PortForwardError(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw PortForwardError(description: "cannot listen on 127.0.0.1:\(port): \(reason); pass another port with --port (0 picks a free one) or stop what holds it")
        }
        return fd
    }
}

/// A local port forward could not be set up.
public struct PortForwardError: Error, CustomStringConvertible {
    public let description: String

    /// An error that says what happened and what to do next.
    public init(description: String) {
        self.description = description
    }
}
