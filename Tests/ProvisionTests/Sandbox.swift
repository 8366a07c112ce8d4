@testable import App
@testable import Engine
import Foundation
@testable import Infra
@testable import PlanLanguage
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A sandbox plan in a CLI test directory, with what tests need to look at it from outside:
/// moto's instances by tag, the recorded SSH hosts, and a cleanup that stops by PID every
/// process the plan started (moto, node hosts, an orphaned terraform), even when a test failed.
struct Sandbox {
    let cli: CLI
    let name: String
    var durableBroker = false
    /// What the nodes boot (`sandbox.init`).
    var initSystem: InitSystem = .openrc
    var planPath = ""

    /// - Parameter pipeline: the `pipeline:` section for `runtime: processes`; nil for the machines only.
    /// - Parameter durableBroker: the broker's log in moto's S3 (`sandbox.durable_broker`); off by
    ///   default in tests, which run many sandboxes at once and moto serves every broker request.
    init(name: String, workers: Int, viaBastion: Bool = false, cloudInitDelay: String = "1s", nodeReadyTimeout: String = "30s", pipeline: String? = nil,
         durableBroker: Bool = false, initSystem: InitSystem = .openrc) {
        cli = CLI()
        self.name = name
        self.durableBroker = durableBroker
        self.initSystem = initSystem
        planPath = writePlan(workers: workers, viaBastion: viaBastion, cloudInitDelay: cloudInitDelay, nodeReadyTimeout: nodeReadyTimeout, pipeline: pipeline)
    }

    @discardableResult
    func writePlan(workers: Int, viaBastion: Bool = false, cloudInitDelay: String = "1s", nodeReadyTimeout: String = "30s", pipeline: String? = nil) -> String {
        let repository = CLI.repository.path
        let runtime = pipeline.map { section in
            """
            runtime: processes
            pipeline:
            \(section.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
            """
        } ?? "runtime: none"
        let files = pipeline == nil ? "" : """

              workloads: \(repository)/.build/\(Services.workloadBuild)
              librdkafka: \(repository)/.tools/lib/librdkafka.so.1
              rules: \(repository)/k8s/base/monitoring/rules/pipeline-rules.yaml
            """
        return cli.write("plan.yaml", """
            name: \(name)
            target: sandbox
            \(runtime)
            cluster:
              worker_count: \(workers)
              workers_via_bastion: \(viaBastion)
              node_ready_timeout: \(nodeReadyTimeout)
              terraform_dir: \(CLI.repository.appendingPathComponent("terraform").path)
            sandbox:
              cloud_init_delay: \(cloudInitDelay)
              durable_broker: \(durableBroker)
              \(initSystem == .systemd ? "init: systemd\n  " : "")node_image: \(CLI.repository.appendingPathComponent(initSystem == .systemd ? ".tools/node-image-systemd" : ".tools/node-image").path)\(files)

            """)
    }

    var stateDirectory: URL { URL(fileURLWithPath: cli.stateRoot).appendingPathComponent(name) }

    /// Runs `provision ARGS --plan <plan>` to completion without blocking a cooperative thread.
    func run(_ arguments: [String]) async throws -> CLI.Result {
        let process = try cli.start(arguments + ["--plan", planPath])
        while process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        return CLI.Result(code: process.exitCode, stdout: process.stdout, stderr: process.stderr, signaled: process.signaled)
    }

    func store() throws -> SQLiteRunStore { try cli.store(plan: name) }

    /// The sandbox EC2 API as recorded by `sandbox.cloud`.
    func ec2() throws -> EC2Client {
        guard let record = SandboxCloud.load(stateDirectory) else { throw StepFailure("sandbox.cloud has no record in \(stateDirectory.path)") }
        return SandboxCloud.client(record.endpoint)
    }

    /// Instances tagged for the plan that are not terminated.
    func liveInstances() async throws -> [EC2Client.Instance] {
        try await ec2().liveInstances(plan: name)
    }

    /// Everything tagged for the plan in moto, by kind.
    func taggedResources() async throws -> PlanResources {
        try await ec2().resources(plan: name)
    }

    /// What the plan's terraform state records, by kind.
    func recordedResources() throws -> PlanResources {
        try TerraformState.resources(in: stateDirectory.appendingPathComponent("terraform/terraform.tfstate"))
    }

    /// The recorded SSH hosts by instance id.
    func hosts() throws -> [String: SandboxHost] { try SandboxFleet.hosts(store()) }

    /// Every process started for this plan: node hosts (their command line names the test
    /// directory), terraform (its working directory is in it) and moto (through its record).
    func processesLeft() -> [Int32] {
        let marker = cli.directory.path
        var pids: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(),
                  let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let cmdline = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd")) ?? ""
            if cmdline.contains(marker) || cwd.hasPrefix(marker), DetachedProcess(pid: pid, processStart: nil).isRunning { pids.append(pid) }
        }
        if let moto = SandboxCloud.load(stateDirectory)?.process, moto.isRunning { pids.append(moto.pid) }
        return pids
    }

    /// Stops by PID whatever this plan left running, then removes the test directory.
    func cleanUp() {
        for pid in processesLeft() { kill(pid, SIGKILL) }
        cli.cleanUp()
    }
}
