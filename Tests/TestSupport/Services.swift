import Foundation
import Engine

#if canImport(Glibc)
import Glibc
#endif

/// Real services for workload tests, installed by scripts/bootstrap, started on loopback ports
/// and stopped by PID.
package enum Services {
    /// The build configuration whose producer and processor the tests run: `debug` unless
    /// `WORKLOAD_BUILD` says otherwise (scripts/test runs the round trip again on `release`).
    package static let workloadBuild = ProcessInfo.processInfo.environment["WORKLOAD_BUILD"] ?? "debug"

    package static let tools = CLI.repository.appendingPathComponent(".tools")
    package static let python = tools.appendingPathComponent("venv/bin/python").path
    package static let libraryPath = ["LD_LIBRARY_PATH": tools.appendingPathComponent("lib").path]

    /// Starts `arguments` (with `{port}` replaced) on a random loopback port until one accepts connections.
    package static func start(_ cli: CLI, executable: String, _ arguments: [String]) async throws -> (CLI.Running, Int) {
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...40_000)
            let process = try cli.start(arguments.map { $0.replacingOccurrences(of: "{port}", with: String(port)) }, executable: executable)
            if try await accepts(port: port, while: process) { return (process, port) }
            kill(process.pid, SIGKILL)
            process.wait()
        }
        throw StepFailure("\(executable) did not start on a loopback port; run scripts/bootstrap")
    }

    /// Sends SIGTERM and blocks until `process` ends: for a `defer`, which cannot await.
    package static func stop(_ process: CLI.Running) {
        kill(process.pid, SIGTERM)
        process.wait()
    }

    /// Sends SIGTERM and waits for `process` to end without blocking a cooperative thread (a
    /// processor's clean stop finishes its batch first).
    package static func terminate(_ process: CLI.Running) async throws {
        kill(process.pid, SIGTERM)
        try await process.finish()
    }

    /// Whether `process` accepts connections on `port` before it exits (a port taken: another try)
    /// or 60 s pass: a Python server's start alone has taken over 10 s on a loaded machine.
    package static func accepts(port: Int, while process: CLI.Running) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline && process.isRunning {
            if let fd = connectLoopback(port) { close(fd); return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    package static func connectLoopback(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected == 0 { return fd }
        close(fd)
        return nil
    }

    /// GET http://127.0.0.1:port/path: status and body, or nil when nothing answers.
    package static func get(port: Int, _ path: String) -> (status: Int, body: String)? {
        guard let fd = connectLoopback(port) else { return nil }
        defer { close(fd) }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = request.withCString { write(fd, $0, strlen($0)) }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while case let n = read(fd, &buffer, buffer.count), n > 0 { response += buffer[0..<n] }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return (status, String(text[split.upperBound...]))
    }

    /// GET returning a JSON object.
    package static func json(port: Int, _ path: String) -> [String: Any]? {
        get(port: port, path).flatMap { try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any] }
    }
}

/// Tansu on a loopback port.
package final class Broker {
    package let process: CLI.Running
    package let address: String

    package init(cli: CLI) async throws {
        let (process, port) = try await Services.start(cli, executable: Services.tools.appendingPathComponent("bin/tansu").path, [
            "broker", "--listener-url", "tcp://127.0.0.1:{port}", "--advertised-listener-url", "tcp://127.0.0.1:{port}",
            "--storage-engine", "memory://tansu/",
        ])
        self.process = process
        address = "127.0.0.1:\(port)"
    }

    package func stop() { Services.stop(process) }

    /// Creates `topics` (3 partitions each) with the kafka helper `script`, trying up to three
    /// times: on a loaded machine the broker's first metadata answer can take longer than the
    /// helper's 10 s.
    package func createTopics(_ topics: [String], cli: CLI, script: String) async throws {
        var last = ""
        for _ in 0..<3 {
            let created = try await cli.run([script, "create", address] + topics, executable: Services.python)
            if created.code == 0 { return }
            last = created.stderr
            if last.contains("TOPIC_ALREADY_EXISTS") { return }
        }
        throw StepFailure("topic creation failed three times: \(last)")
    }
}

/// nx-27017, a MongoDB wire-protocol server, on a loopback port with its own pid file.
package final class MongoServer {
    package let process: CLI.Running
    package let uri: String

    package let port: Int
    package let store: String

    /// - Parameter file: a database file, so that a restart keeps the data; nil for memory.
    package init(cli: CLI, file: String? = nil, port fixed: Int? = nil) async throws {
        let dir = cli.directory.path
        let store = file ?? "memory"
        let arguments = ["--host", "127.0.0.1", "-p", "{port}", "--db", store, "--pid-file", "\(dir)/nx-{port}.pid", "--log-file", "\(dir)/nx-{port}.log"]
        let executable = Services.tools.appendingPathComponent("venv/bin/nx-27017").path
        let (process, port): (CLI.Running, Int)
        if let fixed {
            process = try cli.start(arguments.map { $0.replacingOccurrences(of: "{port}", with: String(fixed)) }, executable: executable)
            guard try await Services.accepts(port: fixed, while: process) else { throw StepFailure("nx-27017 did not restart on port \(fixed)") }
            port = fixed
        } else {
            (process, port) = try await Services.start(cli, executable: executable, arguments)
        }
        self.process = process
        self.port = port
        self.store = store
        uri = "mongodb://127.0.0.1:\(port)/?serverSelectionTimeoutMS=2000"
    }

    package func stop() { Services.stop(process) }
}
