import Engine
import Transport

/// A declarative plan (plans/*.yaml), decoded and validated. See the README's "Plan language".
public struct Plan: Sendable, Equatable {
    /// Where the plan runs its steps.
    public enum Target: String, Sendable, CaseIterable {
        /// Only `exec` steps, on this machine.
        case local
        /// The cluster flow on this machine: a local EC2 API (moto) and SSH hosts on loopback addresses.
        case sandbox
        /// The cluster flow on AWS.
        case aws

        /// Whether the plan creates machines (and so needs a `cluster:` section).
        public var createsMachines: Bool { self != .local }

        /// What runs on the nodes unless the plan says otherwise.
        public var defaultRuntime: Runtime? {
            switch self {
            case .local: nil
            case .sandbox: .processes
            case .aws: .k3s
            }
        }
    }

    /// What runs on the nodes, separately from where they come from.
    public enum Runtime: String, Sendable, CaseIterable {
        /// The pipeline as services of each node's service manager (the sandbox's).
        case processes
        /// K3s, with the pipeline deployed to it (the aws target's).
        case k3s
        /// Nothing: the machines only, ready (SSH answers, cloud-init done).
        case none
    }

    /// Names the plan and its state folder (`state/<name>/`): lowercase letters, digits and `-`.
    public var name: String
    /// Where it runs.
    public var target: Target
    /// Most steps at once (the CLI's `--parallelism` overrides it).
    public var parallelism: Int?
    /// Named secrets and where their values come from.
    public var secrets: [String: SecretSource]
    /// The machines to create (`sandbox` and `aws` targets).
    public var cluster: ClusterSpec?
    /// Sandbox-only settings.
    public var sandbox: SandboxSpec?
    /// The plan's own steps, in declaration order (after the built-in ones of a cluster target).
    public var steps: [StepSpec]
    /// The file the plan came from.
    public var path: String
    /// What runs on the nodes (`runtime:`; cluster targets only).
    public var runtime: Runtime? = nil
    /// The pipeline's settings (`pipeline:`; cluster targets only).
    public var pipeline: PipelineSpec? = nil
    /// How K3s is installed (`k3s:`; `runtime: k3s` only).
    public var k3s: K3sSpec? = nil
}

/// Where a secret's value comes from: never the plan file itself.
public enum SecretSource: Sendable, Equatable {
    /// An environment variable of the provisioner.
    case environment(String)
    /// A file (its contents, trailing newline removed).
    case file(String)
}

/// One step as the plan declares it.
public struct StepSpec: Sendable, Equatable {
    /// Unique id: letters, digits, `.`, `_`, `-`.
    public var id: String
    /// Ids of steps that must succeed first.
    public var needs: [String]
    /// Attempts, backoff and timeout.
    public var retry: RetryPolicy
    /// Run once per item of another step's list output (`{{item}}` in commands).
    public var forEach: ForEach?
    /// The `exec` body.
    public var exec: ExecSpec
    /// Line of the step in the plan file, for errors found after parsing.
    public var line: Int

    /// A fan-out declaration.
    public struct ForEach: Sendable, Equatable {
        public var step: String
        public var output: String
    }
}

/// A local command, with an optional read-only check that decides whether it is already done.
public struct ExecSpec: Sendable, Equatable {
    /// Shell script run by `/bin/sh -c`.
    public var run: String
    /// Shell script: exit 0 means "already done" (its stdout becomes the step's outputs).
    public var check: String?
    /// Shell script `provision down` runs.
    public var down: String?
    /// Extra environment variables.
    public var env: [String: String]
    /// Working directory (relative to the plan's directory).
    public var dir: String?
    /// Secrets exported as environment variables named after them in upper case.
    public var secrets: [String]
}
