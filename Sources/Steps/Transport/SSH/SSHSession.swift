import CSSH2
import CShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One authenticated libssh2 session over one TCP connection.
///
/// Not thread-safe (hence `@unchecked Sendable`): `SSHConnection` owns a session and calls it
/// from one serial queue only.
/// Every call blocks; none should run on Swift's cooperative pool.
final class SSHSession: @unchecked Sendable {
    let endpoint: SSHEndpoint
    private var socket: Int32 = -1
    private var session: OpaquePointer?
    private var tunnel: SSHTunnel?
    /// The SFTP subsystem, started by the first transfer and kept for the next ones (each start
    /// is a channel, a round trip or two and an sftp-server process on the node).
    private var sftp: OpaquePointer?
    /// SHA256 fingerprint of the host key, OpenSSH style (`SHA256:base64`).
    private(set) var hostKeyFingerprint = ""

    private static let libraryReady: Bool = libssh2_init(0) == 0

    /// Connects, checks the host key with `verifyHostKey` (before any credential is sent) and
    /// authenticates with the endpoint's key.
    init(endpoint: SSHEndpoint, connectTimeout: Duration, verifyHostKey: (SSHEndpoint, String) throws -> Void) throws {
        self.endpoint = endpoint
        guard Self.libraryReady else { throw SSHError.handshake(endpoint: endpoint.description, reason: "libssh2_init failed") }
        do {
            if let bastion = endpoint.proxyJump.first {
                let tunnel = try SSHTunnel(bastion: bastion, to: endpoint.host, port: endpoint.port, connectTimeout: connectTimeout, verifyHostKey: verifyHostKey)
                self.tunnel = tunnel
                socket = tunnel.socket
            } else {
                socket = try Self.connect(endpoint, timeout: connectTimeout)
            }
            guard let session = shim_libssh2_session_init() else {
                throw SSHError.handshake(endpoint: endpoint.description, reason: "out of memory")
            }
            self.session = session
            libssh2_session_set_timeout(session, Int(connectTimeout.milliseconds))
            guard libssh2_session_handshake(session, socket) == 0 else {
                throw SSHError.handshake(endpoint: endpoint.description, reason: lastError())
            }
            hostKeyFingerprint = try fingerprint()
            try verifyHostKey(endpoint, hostKeyFingerprint)
            let rc = endpoint.user.withCString { user in
                libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(strlen(user)), nil, endpoint.identityFile, nil)
            }
            guard rc == 0 else {
                let reason = FileManager.default.isReadableFile(atPath: endpoint.identityFile) ? lastError() : "the key file cannot be read"
                throw SSHError.authentication(endpoint: endpoint.description, user: endpoint.user, identityFile: endpoint.identityFile, reason: reason)
            }
            // Commands may legitimately run long; their own deadline is enforced by `exec`.
            libssh2_session_set_timeout(session, 0)
            libssh2_keepalive_config(session, 1, 15)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Ends the session and closes the socket; safe to call twice.
    func close() {
        if let session {
            libssh2_session_set_blocking(session, 1)
            libssh2_session_set_timeout(session, 1000)
            if let sftp {
                libssh2_sftp_shutdown(sftp)
                self.sftp = nil
            }
            _ = libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, "bye", "")
            libssh2_session_free(session)
            self.session = nil
        }
        if socket >= 0 {
            Glibc.close(socket)
            socket = -1
        }
    }

    /// Sends a keepalive if one is due; a dead connection shows up here before a command is sent.
    func keepalive() throws {
        guard let session else { throw SSHError.channel(endpoint: endpoint.description, operation: "keepalive", reason: "session closed") }
        var next: Int32 = 0
        libssh2_session_set_blocking(session, 1)
        guard libssh2_keepalive_send(session, &next) == 0 else {
            throw SSHError.channel(endpoint: endpoint.description, operation: "keepalive", reason: lastError())
        }
    }

    // MARK: Tunnels (used by SSHTunnel on a bastion session)

    /// Opens a `direct-tcpip` channel to `host:port` (blocking).
    func openDirectTCPIP(host: String, port: Int) -> OpaquePointer? {
        guard let session else { return nil }
        libssh2_session_set_blocking(session, 1)
        libssh2_session_set_timeout(session, 15_000)
        defer { libssh2_session_set_timeout(session, 0) }
        return libssh2_channel_direct_tcpip_ex(session, host, Int32(port), "127.0.0.1", 22)
    }

    /// Switches the session between blocking and non-blocking calls.
    func setBlocking(_ blocking: Bool) {
        if let session { libssh2_session_set_blocking(session, blocking ? 1 : 0) }
    }

    /// The TCP socket under the session.
    var socketDescriptor: Int32 { socket }

    /// The libssh2 session itself, for a caller that owns this session on one thread (SSHPortForward).
    var handle: OpaquePointer? { session }

    /// The session's last error, for messages.
    var lastErrorText: String { lastError() }

    // MARK: Exec

    /// Runs `command` through the remote user's shell, reading stdout and stderr together so
    /// that neither can fill up and stall the other, and returns both with the exit status or signal.
    func exec(_ command: String, stdin: Data?, timeout: Duration?, isCancelled: () -> Bool) throws -> CommandResult {
        guard let session else { throw SSHError.channel(endpoint: endpoint.description, operation: "exec", reason: "session closed") }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let operation = "command '\(command.prefix(60))'"
        libssh2_session_set_blocking(session, 0)
        defer { libssh2_session_set_blocking(session, 1) }

        func wait() throws {
            if isCancelled() { throw CancellationError() }
            if let deadline, ContinuousClock.now >= deadline {
                throw SSHError.timedOut(endpoint: endpoint.description, operation: operation, after: timeout ?? .zero)
            }
            try waitSocket(slice: 200)
        }

        var channel: OpaquePointer?
        while channel == nil {
            channel = shim_libssh2_channel_open_session(session)
            if channel == nil {
                guard libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN else {
                    throw SSHError.channel(endpoint: endpoint.description, operation: "opening a channel", reason: lastError())
                }
                try wait()
            }
        }
        defer { libssh2_channel_free(channel) }
        do {
            while true {
                let rc = shim_libssh2_channel_exec(channel, command)
                if rc == 0 { break }
                guard rc == LIBSSH2_ERROR_EAGAIN else {
                    throw SSHError.channel(endpoint: endpoint.description, operation: operation, reason: lastError())
                }
                try wait()
            }
            try sendInput(stdin, channel: channel, wait: wait)

            var stdout = Data()
            var stderr = Data()
            var buffer = [CChar](repeating: 0, count: 64 * 1024)
            while true {
                let out = buffer.withUnsafeMutableBufferPointer { shim_libssh2_channel_read(channel, $0.baseAddress, $0.count) }
                if out > 0 { buffer.withUnsafeBytes { stdout.append(contentsOf: $0.prefix(out)) } }
                let err = buffer.withUnsafeMutableBufferPointer { shim_libssh2_channel_read_stderr(channel, $0.baseAddress, $0.count) }
                if err > 0 { buffer.withUnsafeBytes { stderr.append(contentsOf: $0.prefix(err)) } }
                for rc in [out, err] where rc < 0 && rc != LIBSSH2_ERROR_EAGAIN {
                    throw SSHError.channel(endpoint: endpoint.description, operation: operation, reason: lastError())
                }
                if out > 0 || err > 0 { continue }
                if out == 0 && err == 0 && libssh2_channel_eof(channel) == 1 { break }
                try wait()
            }
            while libssh2_channel_close(channel) == LIBSSH2_ERROR_EAGAIN { try wait() }
            while libssh2_channel_wait_closed(channel) == LIBSSH2_ERROR_EAGAIN { try wait() }
            return CommandResult(exitStatus: exitSignal(channel) == nil ? libssh2_channel_get_exit_status(channel) : nil,
                             exitSignal: exitSignal(channel), standardOutput: stdout, standardError: stderr)
        } catch {
            // Leave the session usable: ask the server to close the channel, without waiting long.
            _ = libssh2_channel_close(channel)
            throw error
        }
    }

    private func sendInput(_ stdin: Data?, channel: OpaquePointer?, wait: () throws -> Void) throws {
        if let stdin, !stdin.isEmpty {
            var offset = 0
            while offset < stdin.count {
                let rc = stdin.withUnsafeBytes { raw in
                    libssh2_channel_write_ex(channel, 0, raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self), stdin.count - offset)
                }
                if rc > 0 { offset += rc } else if rc == LIBSSH2_ERROR_EAGAIN { try wait() } else {
                    throw SSHError.channel(endpoint: endpoint.description, operation: "writing stdin", reason: lastError())
                }
            }
        }
        while libssh2_channel_send_eof(channel) == LIBSSH2_ERROR_EAGAIN { try wait() }
    }

    private func exitSignal(_ channel: OpaquePointer?) -> String? {
        var name: UnsafeMutablePointer<CChar>?
        var length = 0
        guard libssh2_channel_get_exit_signal(channel, &name, &length, nil, nil, nil, nil) == 0, let name else { return nil }
        defer { libssh2_free(session, name) }
        return length > 0 ? String(cString: name) : nil
    }

    // MARK: SFTP

    /// Writes `data` to `remotePath` (created or truncated) with `mode`.
    func upload(_ data: Data, to remotePath: String, mode: Int32) throws {
        try withSFTP("upload to \(remotePath)") { sftp in
            let flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC)
            guard let handle = libssh2_sftp_open_ex(sftp, remotePath, UInt32(remotePath.utf8.count), flags, Int(mode), LIBSSH2_SFTP_OPENFILE) else {
                throw SSHError.channel(endpoint: endpoint.description, operation: "opening \(remotePath) for writing", reason: sftpError(sftp))
            }
            defer { libssh2_sftp_close_handle(handle) }
            var offset = 0
            while offset < data.count {
                let written = data.withUnsafeBytes { raw in
                    libssh2_sftp_write(handle, raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self), min(data.count - offset, 256 * 1024))
                }
                guard written > 0 else {
                    throw SSHError.channel(endpoint: endpoint.description, operation: "writing \(remotePath)", reason: sftpError(sftp))
                }
                offset += written
            }
        }
    }

    /// Reads the whole of `remotePath`.
    func download(_ remotePath: String) throws -> Data {
        try withSFTP("download of \(remotePath)") { sftp in
            guard let handle = libssh2_sftp_open_ex(sftp, remotePath, UInt32(remotePath.utf8.count), UInt(LIBSSH2_FXF_READ), 0, LIBSSH2_SFTP_OPENFILE) else {
                throw SSHError.channel(endpoint: endpoint.description, operation: "opening \(remotePath) for reading", reason: sftpError(sftp))
            }
            defer { libssh2_sftp_close_handle(handle) }
            var data = Data()
            var buffer = [CChar](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBufferPointer { libssh2_sftp_read(handle, $0.baseAddress, $0.count) }
                if n == 0 { return data }
                guard n > 0 else {
                    throw SSHError.channel(endpoint: endpoint.description, operation: "reading \(remotePath)", reason: sftpError(sftp))
                }
                buffer.withUnsafeBytes { data.append(contentsOf: $0.prefix(n)) }
            }
        }
    }

    private func withSFTP<T>(_ operation: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let session else { throw SSHError.channel(endpoint: endpoint.description, operation: operation, reason: "session closed") }
        libssh2_session_set_blocking(session, 1)
        libssh2_session_set_timeout(session, 60_000)
        defer { libssh2_session_set_timeout(session, 0) }
        if sftp == nil {
            guard let opened = libssh2_sftp_init(session) else {
                throw SSHError.channel(endpoint: endpoint.description, operation: operation, reason: "the SFTP subsystem is not available: \(lastError())")
            }
            sftp = opened
        }
        do {
            return try body(sftp!)
        } catch {
            // Whatever went wrong, the next transfer starts a fresh subsystem.
            libssh2_sftp_shutdown(sftp)
            sftp = nil
            throw error
        }
    }

    private func sftpError(_ sftp: OpaquePointer) -> String {
        let code = libssh2_sftp_last_error(sftp)
        let names: [UInt: String] = [2: "no such file", 3: "permission denied", 4: "failure", 14: "no space on the remote file system"]
        return code == 0 ? lastError() : (names[code] ?? "SFTP status \(code)")
    }

    // MARK: Plumbing

    private func fingerprint() throws -> String {
        guard let hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else {
            throw SSHError.handshake(endpoint: endpoint.description, reason: "the server sent no host key")
        }
        let bytes = Data(bytes: hash, count: 32)
        return "SHA256:" + bytes.base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// Waits until the socket is ready in the directions libssh2 is blocked on, at most `slice` ms.
    private func waitSocket(slice: Int32) throws {
        let directions = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        if events & Int16(POLLIN) != 0 {
            // Acknowledge what arrives at once: sshd does not set TCP_NODELAY for a command
            // without a terminal, so its next message waits (Nagle) on the ACK of its previous one,
            // which Linux delays up to 40 ms while this side has nothing to send (the channel's
            // confirmation after the server's post-login message, every connection). The kernel
            // leaves quick-ACK mode by itself, so it is asked again before every wait.
            var one: Int32 = 1
            setsockopt(socket, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        _ = poll(&descriptor, 1, slice)
    }

    private func lastError() -> String {
        guard let session else { return "no session" }
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(session, &message, &length, 0)
        let text = message.map { String(cString: $0) } ?? "unknown error"
        return "\(text) (libssh2 \(code))"
    }

    /// A TCP connection with its own deadline (a blocking connect to a dropped host hangs for
    /// minutes) and TCP_NODELAY (without it each command waits on delayed ACKs).
    private static func connect(_ endpoint: SSHEndpoint, timeout: Duration) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw SSHError.unreachable(endpoint: endpoint.description, reason: "cannot resolve \(endpoint.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let fd = Glibc.socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SSHError.unreachable(endpoint: endpoint.description, reason: String(cString: strerror(errno))) }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var failure: String?
        if Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            if errno == EINPROGRESS {
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&descriptor, 1, Int32(timeout.milliseconds))
                if ready == 0 {
                    failure = "no answer within \(timeout) (host down or traffic dropped)"
                } else {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error != 0 { failure = String(cString: strerror(error)) }
                }
            } else {
                failure = String(cString: strerror(errno))
            }
        }
        if let failure {
            Glibc.close(fd)
            throw SSHError.unreachable(endpoint: endpoint.description, reason: failure)
        }
        _ = fcntl(fd, F_SETFL, flags)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }
}

extension Duration {
    /// Whole milliseconds.
    package var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
