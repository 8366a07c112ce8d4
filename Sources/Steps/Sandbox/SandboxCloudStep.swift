import Engine
import Foundation

/// `sandbox.cloud`: **stand-in for AWS itself** (which cannot run here): the sandbox's EC2 API, a
/// real `moto_server` on a loopback port that keeps
/// running between commands (recorded in `state/<plan>/sandbox/cloud.json`) until `down`.
/// Output: `endpoint` (`http://127.0.0.1:PORT`).
struct SandboxCloudStep: Step {
    /// This step's id.
    static let id = StepID("sandbox.cloud")

    var id: StepID { Self.id }
    /// The node image checked here so a missing one fails first, with what to run. Bootstrap
    /// puts it in `.tools/`, next to the venv that may hold moto.
    let nodeImage: URL

    var inputs: String { "sandbox.cloud moto" }
    var hasCheck: Bool { true }
    var hasTeardown: Bool { true }
    var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(1)) }

    struct Record: Codable {
        var process: DetachedProcess
        var port: Int
        var endpoint: String { "http://127.0.0.1:\(port)" }
    }

    static func recordFile(_ stateDirectory: URL) -> URL {
        stateDirectory.appendingPathComponent("sandbox/cloud.json")
    }

    func check(_ context: StepContext) async throws -> CheckResult {
        guard let record = Self.load(context.stateDirectory), await Self.answers(record) else { return .unsatisfied("the sandbox EC2 API is not running") }
        return .satisfied(["endpoint": .string(record.endpoint)])
    }

    func apply(_ context: StepContext) async throws -> StepOutputs {
        guard FileManager.default.fileExists(atPath: nodeImage.appendingPathComponent("usr/bin/cloud-init").path) else {
            throw StepFailure(SandboxError.missingImage(path: nodeImage.path).description, retryable: false)
        }
        if let record = Self.load(context.stateDirectory), await Self.answers(record) {
            return ["endpoint": .string(record.endpoint)]
        }
        let directory = context.stateDirectory.appendingPathComponent("sandbox", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let port = try Self.freePort()
        let log = directory.appendingPathComponent("moto.log").path
        let executable = try motoServer()
        context.log.write("starting moto (\(executable)) on 127.0.0.1:\(port)")
        let process = try DetachedProcess.launch(executable, ["-H", "127.0.0.1", "-p", String(port)],
                                                 environment: ProcessInfo.processInfo.environment, logFile: log)
        let record = Record(process: process, port: port)
        try JSONEncoder().encode(record).write(to: Self.recordFile(context.stateDirectory))
        let deadline = ContinuousClock.now + .seconds(30)
        while !(await Self.answers(record)) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                await process.stop()
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(2).joined(separator: " | ") ?? ""
                throw StepFailure(SandboxError.cloudFailed(reason: tail, log: log).description)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return ["endpoint": .string(record.endpoint)]
    }

    func teardown(_ context: StepContext) async throws {
        guard let record = Self.load(context.stateDirectory) else { return }
        await record.process.stop()
        try? FileManager.default.removeItem(at: Self.recordFile(context.stateDirectory))
    }

    static func load(_ stateDirectory: URL) -> Record? {
        guard let data = try? Data(contentsOf: recordFile(stateDirectory)) else { return nil }
        return try? JSONDecoder().decode(Record.self, from: data)
    }

    static func answers(_ record: Record) async -> Bool {
        guard record.process.isRunning else { return false }
        let response = try? await HTTPClient(timeout: .seconds(5)).send("GET", record.endpoint + "/")
        return response.map { (200..<500).contains($0.status) } ?? false
    }

    /// moto from bootstrap's venv, else from PATH.
    private func motoServer() throws -> String {
        let venv = nodeImage.deletingLastPathComponent().appendingPathComponent("venv/bin/moto_server").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/moto_server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw StepFailure("moto_server was not found (the sandbox's EC2 API); run scripts/bootstrap", retryable: false)
    }

    private static func freePort() throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20000...60000)
            if LoopbackAddress.isFree("127.0.0.1", port: port) { return port }
        }
        throw StepFailure("no free port on 127.0.0.1 for the sandbox EC2 API")
    }
}
