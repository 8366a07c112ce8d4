import Digest
import Engine
import Foundation
import JSON

/// Drives the real `terraform` binary for one plan: a per-plan working directory (a copy of the
/// root module) and data directory under the state folder, a CLI configuration the project writes
/// itself (the filesystem mirror when present, the registry otherwise), and variables generated
/// from the plan.
///
/// Every command runs as a child of `provision` in its own process group, so cancellation sends
/// it SIGINT and terraform saves its state. Its pid is recorded first: if `provision` itself is
/// SIGKILLed, the next run finds the orphaned terraform and interrupts it before starting another.
public struct TerraformRunner: Sendable {
    /// The root module in the repository (`terraform/`).
    public let moduleSource: URL
    /// `state/<plan>/terraform`: the copy terraform runs in; holds terraform.tfstate.
    public let workingDirectory: URL
    /// `state/<plan>/terraform-data` (TF_DATA_DIR).
    public let dataDirectory: URL
    /// Values for the root module's variables.
    public let variables: [String: JSONValue]
    /// Extra `*_override.tf.json` content (the sandbox's provider endpoints), if any.
    public let providerOverride: JSONValue?
    /// Extra environment (credentials).
    public let environment: [String: String]
    /// `TF_REATTACH_PROVIDERS` while a `ProviderServer` serves this runner's commands.
    private var reattach: String?

    /// Go's GOGC for terraform and its providers unless the environment sets one (`commandEnvironment`).
    static let collectorPercent = "400"

    /// Where the providers come from when no registry can be reached.
    static let filesystemMirror = "/opt/tf-plugins"

    /// A runner with its folders under `stateDirectory`.
    public init(moduleSource: URL, stateDirectory: URL, variables: [String: JSONValue], providerOverride: JSONValue?, environment: [String: String]) {
        self.moduleSource = moduleSource
        self.workingDirectory = stateDirectory.appendingPathComponent("terraform", isDirectory: true)
        self.dataDirectory = stateDirectory.appendingPathComponent("terraform-data", isDirectory: true)
        self.variables = variables
        self.providerOverride = providerOverride
        self.environment = environment
    }

    var cliConfig: URL { workingDirectory.deletingLastPathComponent().appendingPathComponent("terraform.rc") }
    var pidFile: URL { workingDirectory.deletingLastPathComponent().appendingPathComponent("terraform.pid") }
    var stateFile: URL { workingDirectory.appendingPathComponent("terraform.tfstate") }

    // MARK: Commands

    /// Copies the module, writes variables and CLI config, and runs `init` when any of them changed.
    public func prepare(_ context: StepContext) async throws {
        try await interruptOrphan(context)
        let files = FileManager.default
        try files.createDirectory(at: workingDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try files.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try copyModule()
        try write(JSONValue.object(variables).text, to: workingDirectory.appendingPathComponent("terraform.tfvars.json"))
        if let providerOverride {
            try write(providerOverride.text, to: workingDirectory.appendingPathComponent("provider_override.tf.json"))
        }
        try write(Self.cliConfigText(), to: cliConfig)
        let fingerprint = try moduleFingerprint()
        let marker = dataDirectory.appendingPathComponent("provision-init")
        if (try? String(contentsOf: marker, encoding: .utf8)) != fingerprint {
            context.log.write("terraform init")
            let result = try await run(["init", "-input=false", "-no-color"], context)
            guard result.succeeded else { throw failure("init", result, lines: result.standardErrorTail) }
            try write(fingerprint, to: marker)
        }
    }

    /// `apply -json`; per-resource progress goes to the step log as readable lines.
    /// - Returns: the root module's outputs as the apply reported them (sensitive ones left out),
    ///   so no `output` command (another terraform start) is needed; nil when it reported none.
    public func apply(_ context: StepContext) async throws -> StepOutputs? {
        let result = try await run(["apply", "-auto-approve", "-input=false", "-json", "-no-color", "-lock-timeout=60s"], context, readable: true)
        guard result.succeeded else { throw failure("apply", result, lines: result.standardOutput.split(separator: "\n").map(String.init)) }
        return Self.reportedOutputs(result.standardOutput)
    }

    /// The outputs in the last `outputs` message of an `apply -json` stream (the form of `output
    /// -json`'s object, per output), sensitive ones left out; nil when the stream has none.
    static func reportedOutputs(_ stream: String) -> StepOutputs? {
        let last = stream.split(separator: "\n").reversed().lazy.compactMap { line -> JSONValue? in
            guard line.contains(#""type":"outputs""#), let message = JSONValue.parse(String(line)), message["type"]?.string == "outputs" else { return nil }
            return message["outputs"]
        }.first
        return last.map(Self.stepOutputs)
    }

    /// `destroy -json`.
    public func destroy(_ context: StepContext) async throws {
        let result = try await run(["destroy", "-auto-approve", "-input=false", "-json", "-no-color", "-lock-timeout=60s"], context, readable: true)
        guard result.succeeded else { throw failure("destroy", result, lines: result.standardOutput.split(separator: "\n").map(String.init)) }
    }

    /// `plan -detailed-exitcode`: true when nothing would change.
    public func isConverged(_ context: StepContext) async throws -> Bool {
        let result = try await run(["plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock-timeout=60s"], context)
        switch result.exitCode {
        case 0: return true
        case 2: return false
        default: throw failure("plan", result, lines: result.standardErrorTail)
        }
    }

    /// `output -json`, as step outputs (sensitive outputs left out).
    public func outputs(_ context: StepContext) async throws -> StepOutputs {
        let result = try await run(["output", "-json", "-no-color"], context, logOutput: false)
        guard result.succeeded, let object = JSONValue.parse(result.standardOutput), case .object(let outputs) = object else {
            throw failure("output", result, lines: result.standardErrorTail)
        }
        return Self.stepOutputs(.object(outputs))
    }

    /// Terraform's outputs object (each output's `sensitive`, `type`, `value`) as step outputs,
    /// sensitive ones left out.
    static func stepOutputs(_ outputs: JSONValue) -> StepOutputs {
        var values: StepOutputs = [:]
        guard case .object(let outputs) = outputs else { return values }
        for (name, output) in outputs {
            guard case .object(let fields) = output, fields["sensitive"] != .bool(true), let value = fields["value"] else { continue }
            values[name] = value.outputValue
        }
        return values
    }

    /// The cloud resources the local state file records (see `TerraformState`).
    public func recordedResources() throws -> PlanResources {
        try TerraformState.resources(in: stateFile)
    }

    // MARK: Plumbing

    /// The environment terraform runs with: `base` (this process's), the runner's own variables,
    /// the project's CLI config and data directory, no prompts or version checks.
    ///
    /// Terraform and its AWS provider are Go programs whose start-up (the provider builds the
    /// schema of every resource type, on every command) is mostly allocation: GOGC=400 makes
    /// their collector run a quarter as often (BENCHMARKS.md: CPU time and memory measured).
    /// A GOGC the user set wins.
    func commandEnvironment(_ base: [String: String]) -> [String: String] {
        var env = base
        env.merge(environment) { $1 }
        env["TF_CLI_CONFIG_FILE"] = cliConfig.path
        env["TF_DATA_DIR"] = dataDirectory.path
        env["TF_IN_AUTOMATION"] = "1"
        env["TF_INPUT"] = "0"
        env["CHECKPOINT_DISABLE"] = "1"
        if env["GOGC"] == nil { env["GOGC"] = Self.collectorPercent }
        if let reattach { env["TF_REATTACH_PROVIDERS"] = reattach }
        return env
    }

    /// Runs `body` with a runner whose commands share one AWS provider process
    /// (`ProviderServer`), which is stopped when `body` ends, however it ends. Call after
    /// `prepare`: `init` installs the provider.
    public func sharingProvider<T>(_ context: StepContext, _ body: (TerraformRunner) async throws -> T) async throws -> T {
        let stateDirectory = workingDirectory.deletingLastPathComponent()
        let server = try await ProviderServer.start(dataDirectory: dataDirectory, stateDirectory: stateDirectory,
                                                    environment: commandEnvironment(ProcessInfo.processInfo.environment))
        context.log.write("terraform's AWS provider: one process (pid \(server.process.pid)) serves this step's terraform commands")
        var served = self
        served.reattach = server.reattach
        do {
            let result = try await body(served)
            await server.stop(stateDirectory: stateDirectory)
            return result
        } catch {
            await server.stop(stateDirectory: stateDirectory)
            throw error
        }
    }

    private func run(_ arguments: [String], _ context: StepContext, readable: Bool = false, logOutput: Bool = true) async throws -> ProcessResult {
        let env = commandEnvironment(ProcessInfo.processInfo.environment)
        // The shell records its pid, then becomes terraform (same pid), so an orphan can be found.
        let script = "echo $$ > \"$0\"; exec terraform \"$@\""
        var command = ProcessCommand("/bin/sh", ["-c", script, pidFile.path] + arguments, environment: env, workingDirectory: workingDirectory.path)
        // Left running by a killed `provision`, a later run interrupts it as Ctrl-C would (its
        // provider plugins ignore SIGINT; SIGTERM would kill them mid-call) and gives it time to
        // finish the API calls in flight and save its state before SIGKILL.
        command.stopSignal = SIGINT
        command.stopGrace = .seconds(90)
        let log: StepLog?
        if readable {
            let stepLog = context.log
            log = StepLog(path: context.log.path.deletingPathExtension().appendingPathExtension("terraform.json"), redactor: context.redactor) { lines in
                stepLog.write(lines.compactMap(TerraformEvent.describe))
            }
        } else {
            log = logOutput ? context.log : nil
        }
        defer { try? FileManager.default.removeItem(at: pidFile) }
        return try await context.processes.run(command, redactor: context.redactor, log: log, captureLimit: 8 << 20)
    }

    /// A terraform left running by a `provision` that was killed holds the state lock and may
    /// still be creating instances: interrupt it (it then saves its state) before going on.
    /// `prepare` does this first; a caller that reads the state before `prepare` ends calls it itself.
    /// One whose parent is a live `provision` is no orphan (a lock-free `status --audit` beside a
    /// running `up`): it is left alone, as is that run's provider server.
    func interruptOrphan(_ context: StepContext) async throws {
        try await interruptOrphanTerraform(context)
        // Only now: the orphaned terraform needed its provider to finish the calls in flight.
        await ProviderServer.stopOrphan(stateDirectory: workingDirectory.deletingLastPathComponent())
    }

    private func interruptOrphanTerraform(_ context: StepContext) async throws {
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              pid != getpid(), !context.processes.running.contains(pid) else { return }
        let process = DetachedProcess(pid: pid, processStart: LockHolder.processStart(pid))
        guard process.isRunning, (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains("terraform") == true else {
            try? FileManager.default.removeItem(at: pidFile)
            return
        }
        guard process.isOrphaned else { return }
        context.log.write("terraform pid \(pid) from an interrupted run is still running; interrupting it so it saves its state")
        kill(pid, SIGINT)
        let deadline = ContinuousClock.now + .seconds(90)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning { await process.stop(grace: .zero) }
        try? FileManager.default.removeItem(at: pidFile)
    }

    private func failure(_ command: String, _ result: ProcessResult, lines: [String]) -> StepFailure {
        let diagnostics = TerraformEvent.errors(in: lines)
        let detail = diagnostics.isEmpty ? lines.suffix(3).joined(separator: " | ") : diagnostics.joined(separator: "; ")
        return StepFailure("terraform \(command) \(result.summary): \(detail)")
    }

    /// Replaces the module copy with the repository's module (state files and the lock file stay).
    private func copyModule() throws {
        let files = FileManager.default
        for name in (try? files.contentsOfDirectory(atPath: workingDirectory.path)) ?? [] where name.hasSuffix(".tf") || name.hasSuffix(".tf.json") || name == "modules" {
            try files.removeItem(at: workingDirectory.appendingPathComponent(name))
        }
        guard files.fileExists(atPath: moduleSource.appendingPathComponent("main.tf").path) else {
            throw StepFailure("no Terraform root module at \(moduleSource.path) (main.tf missing); set cluster.terraform_dir in the plan", retryable: false)
        }
        for name in try files.contentsOfDirectory(atPath: moduleSource.path) where name.hasSuffix(".tf") || name == "modules" {
            try files.copyItem(at: moduleSource.appendingPathComponent(name), to: workingDirectory.appendingPathComponent(name))
        }
    }

    private func moduleFingerprint() throws -> String {
        SHA256.hex(Self.cliConfigText() + Self.digest(of: workingDirectory))
    }

    /// A digest of the Terraform files under `directory` (`.tf`, `.tf.json`, `.tftpl`), by path
    /// relative to it; `.terraform` folders are skipped.
    static func digest(of directory: URL) -> String {
        let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        var files: [URL] = []
        while let url = enumerator?.nextObject() as? URL {
            if url.path.contains("/.terraform") { continue }
            let name = url.lastPathComponent
            if name.hasSuffix(".tf") || name.hasSuffix(".tf.json") || name.hasSuffix(".tftpl") { files.append(url) }
        }
        var text = ""
        for url in files.sorted(by: { $0.path < $1.path }) {
            text += url.path.dropFirst(directory.path.count) + ((try? String(contentsOf: url, encoding: .utf8)) ?? "")
        }
        return SHA256.hex(text)
    }

    private func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
        chmod(url.path, 0o600)
    }

    static func cliConfigText() -> String {
        guard FileManager.default.fileExists(atPath: filesystemMirror) else { return "disable_checkpoint = true\n" }
        return """
            # Written by provision: providers from the local mirror, nothing from the network.
            provider_installation {
              filesystem_mirror {
                path    = "\(filesystemMirror)"
                include = ["registry.terraform.io/*/*"]
              }
              direct {
                exclude = ["registry.terraform.io/*/*"]
              }
            }
            disable_checkpoint = true

            """
    }
}
