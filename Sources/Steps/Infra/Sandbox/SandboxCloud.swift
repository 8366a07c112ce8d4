import Engine
import Foundation

/// **Stand-in for AWS itself**: the sandbox's EC2 API, a real `moto_server` on a loopback port,
/// started detached so that it outlives the command that started it, and recorded in
/// `state/<plan>/sandbox/cloud.json`.
///
/// moto keeps what it holds in memory only: one that was started again (after a reboot) is a
/// new, empty cloud. It gets another port, so its endpoint changes and everything built on the
/// old cloud is applied again.
package struct SandboxCloud: Sendable {
    /// What `cloud.json` records.
    struct Record: Codable, Sendable {
        var process: DetachedProcess
        var port: Int
        var endpoint: String { "http://127.0.0.1:\(port)" }
    }

    /// The plan's state directory.
    let stateDirectory: URL
    /// The node image; bootstrap's venv (which may hold moto) is next to it.
    let nodeImage: URL?

    static func recordFile(_ stateDirectory: URL) -> URL {
        stateDirectory.appendingPathComponent("sandbox/cloud.json")
    }

    /// The recorded cloud, running or not.
    static func load(_ stateDirectory: URL) -> Record? {
        guard let data = try? Data(contentsOf: recordFile(stateDirectory)) else { return nil }
        return try? JSONDecoder().decode(Record.self, from: data)
    }

    /// Whether the recorded process runs and accepts connections on its port. Not an HTTP
    /// request: moto answers a path that names no service (`GET /`) by building its S3 app
    /// first, which a full test run has made take over 90 s, and a cloud that is only slow is not
    /// gone (moto keeps its resources in memory: a new one would be empty).
    static func answers(_ record: Record) -> Bool {
        record.process.isRunning && LoopbackAddress.accepts("127.0.0.1", port: record.port)
    }

    /// The recorded cloud when it runs and answers.
    func running() -> Record? {
        guard let record = Self.load(stateDirectory), Self.answers(record) else { return nil }
        return record
    }

    /// Starts moto on a free port other than the last one's and waits until it listens; `warm`:
    /// and until it answers EC2 (`warmUp`). `sandbox.cloud` leaves that to `terraform.apply`,
    /// which warms it up beside `terraform init`.
    func start(log: StepLog, warm: Bool = true) async throws -> Record {
        let directory = stateDirectory.appendingPathComponent("sandbox", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let port = try Self.freePort(other: Self.load(stateDirectory)?.port)
        let logFile = Self.logFile(stateDirectory)
        let executable = try motoServer()
        log.write("starting moto (\(executable)) on 127.0.0.1:\(port)")
        let process = try DetachedProcess.launch(executable, ["-H", "127.0.0.1", "-p", String(port)],
                                                 environment: ProcessInfo.processInfo.environment, logFile: logFile)
        let record = Record(process: process, port: port)
        try JSONEncoder().encode(record).write(to: Self.recordFile(stateDirectory))
        // moto listens within seconds; a machine busy with many sandboxes at once (a full test run)
        // has taken over 30 s to let this wait look again. A moto that exits fails at once.
        let deadline = ContinuousClock.now + .seconds(90)
        while !Self.answers(record) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                await process.stop()
                let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.split(separator: "\n").suffix(2).joined(separator: " | ") ?? ""
                throw StepFailure(SandboxError.cloudFailed(reason: tail, log: logFile).description)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        if warm {
            do {
                try await Self.warmUp(record.endpoint, logFile: logFile)
            } catch {
                await process.stop()
                throw error
            }
        }
        return record
    }

    /// moto builds its EC2 backend (regions, images, instance types) on the first EC2 call: 1.3 s
    /// on a quiet machine, 3.5 s with one of its two cores busy, over 60 s under a full test run.
    /// That call is made here, with a budget of its own, before any other (terraform's, the
    /// sweep's) so that none waits for it; on a warm moto it is one quick call.
    package static func warmUp(_ endpoint: String, logFile: String) async throws {
        do {
            _ = try await client(endpoint, timeout: firstCallBudget).call("DescribeRegions", [:])
        } catch {
            throw StepFailure(SandboxError.cloudFailed(reason: "its first EC2 call failed: \(error)", log: logFile).description)
        }
    }

    /// The log file of the plan's moto.
    static func logFile(_ stateDirectory: URL) -> String {
        stateDirectory.appendingPathComponent("sandbox/moto.log").path
    }

    /// What the sandbox's services give moto as credentials: it takes any, so these are fixed and
    /// no secret (terraform's provider, the EC2 client, the broker's object store use them).
    package static let accessKey = "sandbox", secretKey = "sandbox"

    /// An EC2 client of the moto at `endpoint`.
    package static func client(_ endpoint: String, region: String = "us-east-1", timeout: Duration = .seconds(60)) -> EC2Client {
        EC2Client(endpoint: endpoint, region: region, accessKey: accessKey, secretKey: secretKey, timeout: timeout)
    }

    /// How long moto's first EC2 call may take: it builds the EC2 backend then.
    static let firstCallBudget: Duration = .seconds(240)

    /// Stops the recorded cloud (if it still runs) and forgets it.
    func stop() async {
        guard let record = Self.load(stateDirectory) else { return }
        await record.process.stop()
        try? FileManager.default.removeItem(at: Self.recordFile(stateDirectory))
    }

    /// moto from bootstrap's venv, else from PATH.
    private func motoServer() throws -> String {
        if let venv = nodeImage?.deletingLastPathComponent().appendingPathComponent("venv/bin/moto_server").path,
           FileManager.default.isExecutableFile(atPath: venv) {
            return venv
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/moto_server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw StepFailure("moto_server was not found (the sandbox's EC2 API); run scripts/bootstrap", retryable: false)
    }

    private static func freePort(other previous: Int?) throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20000...60000)
            if port != previous && LoopbackAddress.isFree("127.0.0.1", port: port) { return port }
        }
        throw StepFailure("no free port on 127.0.0.1 for the sandbox EC2 API")
    }
}
