import Engine
import Foundation
import PlanLanguage

/// A local shell command (`exec` in a plan), with an optional `check` that decides whether it is
/// already done and an optional `down` for teardown.
///
/// Outputs: `stdout` (trimmed text) and `lines` (its non-empty lines, usable by `for_each`).
/// Commands see `PROVISION_STEP`, `PROVISION_ITEM` (fan-out children), the plan's `env`, and each
/// listed secret as an upper-case environment variable; `{{item}}` in a command is replaced by
/// the item.
public struct ExecStep: Step {
    public let id: StepID
    public let dependencies: [StepID]
    public let retry: RetryPolicy
    let spec: ExecSpec
    let item: String?
    let workingDirectory: String
    let secretEnvironment: [String: String]

    /// Creates the step for `spec`; `secrets` holds resolved values by secret name.
    public init(spec: StepSpec, planDirectory: URL, secrets: [String: String], item: String? = nil) {
        self.id = item.map { StepID(spec.id).child($0) } ?? StepID(spec.id)
        self.dependencies = (spec.forEach.map { [StepID($0.step)] } ?? []) + spec.needs.filter { $0 != spec.forEach?.step }.map { StepID($0) }
        self.retry = spec.retry
        self.spec = spec.exec
        self.item = item
        let dir = spec.exec.dir ?? "."
        self.workingDirectory = dir.hasPrefix("/") ? dir : planDirectory.appendingPathComponent(dir).standardizedFileURL.path
        self.secretEnvironment = Dictionary(uniqueKeysWithValues: spec.exec.secrets.map { ($0.uppercased(), secrets[$0] ?? "") })
        self.template = spec
        self.planDirectory = planDirectory
        self.secrets = secrets
    }

    private let template: StepSpec
    private let planDirectory: URL
    private let secrets: [String: String]

    /// The fan-out child of this step for `item`.
    public func forItem(_ item: String) -> ExecStep {
        ExecStep(spec: template, planDirectory: planDirectory, secrets: secrets, item: item)
    }

    /// Configuration only: secret *names* take part, never their values.
    public var inputs: String {
        let env = spec.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1}")
        return ["exec", spec.run, spec.check ?? "", spec.down ?? "", env, workingDirectory, spec.secrets.sorted().joined(separator: ","), item ?? ""]
            .joined(separator: "\u{0}")
    }

    /// The `steps` entry's keys, named `steps.<id>.exec.<key>` (`env` by variable); secrets by name.
    public var planKeys: [String: String] {
        let prefix = "steps.\(template.id).exec."
        var keys = [prefix + "run": spec.run, prefix + "dir": spec.dir ?? "."]
        if let check = spec.check { keys[prefix + "check"] = check }
        if let down = spec.down { keys[prefix + "down"] = down }
        if !spec.secrets.isEmpty { keys[prefix + "secrets"] = spec.secrets.sorted().joined(separator: ", ") }
        for (name, value) in spec.env { keys[prefix + "env." + name] = value }
        return keys
    }

    public var hasCheck: Bool { spec.check != nil }
    public var hasTeardown: Bool { spec.down != nil }

    public func check(_ context: StepContext) async throws -> CheckResult {
        guard let script = spec.check else { return .unsatisfied("no check command") }
        let result = try await context.processes.run(command(script, context), redactor: context.redactor, log: context.log)
        return result.succeeded ? .satisfied(Self.outputs(result.standardOutput)) : .unsatisfied("check: \(result.summary)")
    }

    public func apply(_ context: StepContext) async throws -> StepOutputs {
        let result = try await context.processes.run(command(spec.run, context), redactor: context.redactor, log: context.log)
        guard result.succeeded else { throw failure("run", result) }
        return Self.outputs(result.standardOutput)
    }

    public func teardown(_ context: StepContext) async throws {
        guard let script = spec.down else { return }
        let result = try await context.processes.run(command(script, context), redactor: context.redactor, log: context.log)
        guard result.succeeded else { throw failure("down", result) }
    }

    private func command(_ script: String, _ context: StepContext) -> ProcessCommand {
        var environment = ProcessInfo.processInfo.environment
        environment.merge(spec.env) { $1 }
        environment.merge(secretEnvironment) { $1 }
        environment["PROVISION_STEP"] = id.rawValue
        environment["PROVISION_ITEM"] = item
        let text = item.map { script.replacingOccurrences(of: "{{item}}", with: $0) } ?? script
        return .shell(text, environment: environment, workingDirectory: workingDirectory)
    }

    private func failure(_ what: String, _ result: ProcessResult) -> StepFailure {
        let detail = result.standardErrorTail.last.map { ": \($0)" } ?? ""
        // 126/127: the shell could not run the command at all; trying again cannot help.
        let retryable = result.exitCode != 126 && result.exitCode != 127
        return StepFailure("\(what) command \(result.summary)\(detail)", retryable: retryable)
    }

    static func outputs(_ stdout: String) -> StepOutputs {
        let trimmed = stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = trimmed.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return ["stdout": .string(trimmed), "lines": .list(lines.map(OutputValue.string))]
    }
}
