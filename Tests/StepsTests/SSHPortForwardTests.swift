@testable import App
import Engine
import Foundation
import Testing
@testable import Transport

#if canImport(Glibc)
import Glibc
#endif

/// A local port forward through a real sshd (a sandbox node) to a real TCP server on that node.
@Suite(.serialized) struct SSHPortForwardTests {
    /// A TCP echo server on the node, one thread per connection, started in the background.
    static func startEcho(on address: String, port: Int, pool: SSHPool, endpoint: SSHEndpoint) async throws {
        let script = """
            import socket, threading
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("\(address)", \(port))); s.listen(64)
            def serve(c):
                while True:
                    data = c.recv(65536)
                    if not data: break
                    c.sendall(data)
                c.close()
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """
        try await pool.upload(Data(script.utf8), to: "/tmp/echo.py", on: endpoint)
        _ = try await pool.run("setsid nohup python3 /tmp/echo.py >/tmp/echo.log 2>&1 </dev/null &", on: endpoint)
        try await waitUntilAsync { try await pool.run("python3 -c 'import socket; socket.create_connection((\"\(address)\", \(port)), 1)'", on: endpoint).succeeded }
    }

    @Test func eightConcurrentConnectionsEchoThroughOneSessionARefusedTargetClosesItsClientAndCloseLeavesNoListener() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let pool = SSHPool(store: nodes.store)
            let endpoint = nodes.endpoint(host)
            try await Self.startEcho(on: host.address, port: 7777, pool: pool, endpoint: endpoint)

            let forward = try await SSHPortForward.open(endpoint: endpoint, to: host.address, port: 7777, pins: HostKeyPins(store: nodes.store))
            #expect(forward.localPort > 0)
            let port = forward.localPort
            let wrong = try await onThread { () -> [String] in
                // Eight connections open at once; each sends three 100 kB chunks of its own bytes, in
                // turns, and reads each chunk back before the next turn: every connection is served
                // while the others are open.
                var wrong: [String] = []
                let clients = try (0..<8).map { _ in try LocalClient(port: port) }
                for round in 0..<3 {
                    for (index, client) in clients.enumerated() {
                        let chunk = [UInt8]((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index &* 7 &+ round) })
                        try client.send(chunk)
                        if try client.read(count: chunk.count) != chunk { wrong.append("connection \(index), round \(round)") }
                    }
                }
                // Half-closed by the client: the echo server closes, and so does the forwarded connection.
                for (index, client) in clients.enumerated() {
                    client.shutdownWrite()
                    if try !client.readToEnd().isEmpty { wrong.append("connection \(index): bytes after the echo") }
                    client.close()
                }
                return wrong
            }
            #expect(wrong.isEmpty, "\(wrong)")
            #expect(forward.connectionsServed == 8)

            // A forward to a port nothing listens on: the client sees its connection closed, and the
            // forward keeps serving.
            let refused = try await SSHPortForward.open(endpoint: endpoint, to: host.address, port: 7778, pins: HostKeyPins(store: nodes.store))
            let (closed, echoed) = try await onThread { () -> ([UInt8], [UInt8]) in
                let client = try LocalClient(port: refused.localPort)
                let closed = try client.readToEnd()
                client.close()
                let again = try LocalClient(port: port)
                try again.send(Array("still forwarding".utf8))
                let echoed = try again.read(count: 16)
                again.close()
                return (closed, echoed)
            }
            #expect(closed.isEmpty && echoed == Array("still forwarding".utf8))
            refused.close()

            forward.close()
            forward.close()
            #expect(throws: (any Error).self, "nothing listens on 127.0.0.1:\(port) after close") { try LocalClient(port: port) }
            #expect(!Self.listening(port: port))
            let log = try String(contentsOfFile: host.directory + "/node.log", encoding: .utf8)
            #expect(log.components(separatedBy: "Accepted publickey").count - 1 == 3, "one login for the set-up commands, one per forward")
            await pool.closeAll()
        }
    }

    @Test func aTakenLocalPortIsRefusedWithWhatToDo() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let first = try await SSHPortForward.open(endpoint: nodes.endpoint(host), to: host.address, port: 22, pins: HostKeyPins(store: nodes.store))
            defer { first.close() }
            let error = await #expect(throws: PortForwardError.self) {
                _ = try await SSHPortForward.open(endpoint: nodes.endpoint(host), to: host.address, port: 22, localPort: first.localPort, pins: HostKeyPins(store: nodes.store))
            }
            #expect(error?.description.contains("127.0.0.1:\(first.localPort)") == true && error?.description.contains("--port") == true, "\(String(describing: error))")
            // Its target is the node's own sshd: the forward carries SSH's greeting.
            let greeting = try await onThread { () -> String in
                let client = try LocalClient(port: first.localPort)
                defer { client.close() }
                return String(decoding: try client.read(count: 8), as: UTF8.self)
            }
            #expect(greeting == "SSH-2.0-")
        }
    }

    @Test func aLostNodeStopsTheForwardSayingWhyAndClosesItsPort() async throws {
        try await withSandboxNodes { nodes in
            let host = try await nodes.start(1)[0]
            let forward = try await SSHPortForward.open(endpoint: nodes.endpoint(host), to: host.address, port: 22, pins: HostKeyPins(store: nodes.store))
            await host.stop()
            let why = await forward.stopped()
            #expect(why?.contains("the SSH connection to node-1") == true && why?.contains("was lost") == true, "\(String(describing: why))")
            #expect(!Self.listening(port: forward.localPort))
        }
    }

    /// Whether /proc/net/tcp lists a socket listening on 127.0.0.1:`port`.
    static func listening(port: Int) -> Bool {
        let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
        let local = String(format: "0100007F:%04X", port)
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1] == local && fields[3] == "0A"
        }
    }
}

/// Runs blocking socket work on a thread of its own, off Swift's cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Polls an asynchronous condition until it holds (20 s at most).
func waitUntilAsync(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw StepFailure("condition not met within \(timeout)") }
        try await Task.sleep(for: .milliseconds(200))
    }
}

/// A blocking TCP client of 127.0.0.1:`port`, every read bounded by a 20 s timeout.
final class LocalClient: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw StepFailure("cannot connect to 127.0.0.1:\(port): \(reason)")
        }
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress!.advanced(by: offset), bytes.count - offset) }
            guard n > 0 else { throw StepFailure("write failed: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    func read(count: Int) throws -> [UInt8] {
        var result = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < count {
            let n = Glibc.read(fd, &buffer, min(buffer.count, count - result.count))
            guard n > 0 else { throw StepFailure("read ended after \(result.count) of \(count) bytes: \(n == 0 ? "closed" : String(cString: strerror(errno)))") }
            result += buffer[0..<n]
        }
        return result
    }

    func readToEnd() throws -> [UInt8] {
        var result = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n == 0 { return result }
            guard n > 0 else { throw StepFailure("read failed: \(String(cString: strerror(errno)))") }
            result += buffer[0..<n]
        }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
    func close() { Glibc.close(fd) }
}
