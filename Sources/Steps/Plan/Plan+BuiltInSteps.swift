extension Plan.Target {
    /// The ids of the steps a flow of this target runs before the plan's own, as the plan language
    /// names them: a plan's steps may `needs:` them, never reuse them. The step types own these
    /// ids (`TerraformApplyStep.id`); the flow tests check that the two agree. None of them depends
    /// on a plan's own step, so they cannot close a cycle.
    public var builtInSteps: [String] {
        switch self {
        case .local: []
        case .sandbox: ["sandbox.cloud", "ssh.key", "terraform.apply", "node.ready"]
        case .aws: ["ssh.key", "terraform.apply", "node.ready"]
        }
    }

    /// Every id any target reserves for its built-in steps.
    public static var reservedStepIDs: [String] {
        Plan.Target.sandbox.builtInSteps + Plan.Runtime.processes.builtInSteps + Plan.Runtime.k3s.builtInSteps
    }
}

extension Plan.Runtime {
    /// The ids of the steps this runtime adds after the target's (owned by `ArtifactsStep`,
    /// `ServiceStep.Kind` and `VerifyStep`, and by the K3s steps; the flow tests check that they agree).
    public var builtInSteps: [String] {
        switch self {
        case .processes:
            ["runtime.artifacts", "service.broker", "service.mongodb", "service.node-exporter", "service.alertmanager", "service.prometheus",
             "service.processor", "service.producer", "verify"]
        case .k3s: ["k3s.server", "k3s.join", "cluster.ready", "kubeconfig", "monitoring", "platform", "workloads", "verify"]
        case .none: []
        }
    }
}

extension Plan {
    /// Every built-in step id of this plan: its target's and its runtime's.
    public var builtInSteps: [String] { target.builtInSteps + (runtime?.builtInSteps ?? []) }
}
