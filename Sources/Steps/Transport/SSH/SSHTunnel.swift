import CSSH2
import CShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// ProxyJump: a `direct-tcpip` channel through a bastion's SSH session to a private host, exposed
/// as one end of a local socket pair so that a second libssh2 session can run over it unchanged.
///
/// A dedicated thread owns the bastion session after set-up and copies bytes both ways; it ends
/// (closing the channel and the bastion session) when either side closes.
final class SSHTunnel: @unchecked Sendable {
    /// The socket the inner session uses.
    let socket: Int32
    private let pumpSide: Int32
    private let bastion: SSHSession
    private let channel: OpaquePointer

    /// Connects to the bastion (checking its host key) and opens a channel to `host:port`.
    init(bastion endpoint: SSHEndpoint, to host: String, port: Int, connectTimeout: Duration, verifyHostKey: (SSHEndpoint, String) throws -> Void) throws {
        let bastion = try SSHSession(endpoint: endpoint, connectTimeout: connectTimeout, verifyHostKey: verifyHostKey)
        guard let channel = bastion.openDirectTCPIP(host: host, port: port) else {
            throw SSHError.unreachable(endpoint: "\(host):\(port) via bastion \(endpoint)", reason: "the bastion could not open a connection to it: \(bastion.lastErrorText)")
        }
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            libssh2_channel_free(channel)
            throw SSHError.channel(endpoint: endpoint.description, operation: "tunnel", reason: String(cString: strerror(errno)))
        }
        self.socket = pair[0]
        self.pumpSide = pair[1]
        _ = fcntl(pair[1], F_SETFL, fcntl(pair[1], F_GETFL) | O_NONBLOCK)
        self.bastion = bastion
        self.channel = channel
        let thread = Thread { [self] in pump() }
        thread.stackSize = 256 * 1024
        thread.start()
    }

    /// Copies bytes between the socket pair and the channel until one side closes.
    private func pump() {
        bastion.setBlocking(false)
        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
        var pending = [UInt8]()
        loop: while true {
            var fds = [pollfd(fd: pumpSide, events: Int16(POLLIN), revents: 0), pollfd(fd: bastion.socketDescriptor, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, 100)
            // local → channel
            if pending.isEmpty {
                let n = read(pumpSide, &buffer, buffer.count)
                if n == 0 || (n < 0 && errno != EAGAIN) { break loop }
                if n > 0 { pending = Array(buffer.prefix(n)) }
            }
            while !pending.isEmpty {
                let written = pending.withUnsafeBufferPointer { raw in
                    libssh2_channel_write_ex(channel, 0, UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self), raw.count)
                }
                if written == Int(LIBSSH2_ERROR_EAGAIN) { break }
                if written < 0 { break loop }
                pending.removeFirst(written)
            }
            // channel → local
            while true {
                let n = buffer.withUnsafeMutableBufferPointer { raw in
                    shim_libssh2_channel_read(channel, UnsafeMutableRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self), raw.count)
                }
                if n == Int(LIBSSH2_ERROR_EAGAIN) { break }
                if n <= 0 { if n < 0 || libssh2_channel_eof(channel) == 1 { break loop } else { break } }
                var offset = 0
                while offset < n {
                    let w = buffer.withUnsafeBytes { send(pumpSide, $0.baseAddress!.advanced(by: offset), n - offset, Int32(MSG_NOSIGNAL)) }
                    if w > 0 {
                        offset += w
                    } else if w < 0 && errno == EAGAIN {
                        var out = pollfd(fd: pumpSide, events: Int16(POLLOUT), revents: 0)
                        _ = poll(&out, 1, 100)
                    } else {
                        break loop
                    }
                }
            }
        }
        close(pumpSide)
        bastion.setBlocking(true)
        libssh2_channel_free(channel)
        bastion.close()
    }
}
