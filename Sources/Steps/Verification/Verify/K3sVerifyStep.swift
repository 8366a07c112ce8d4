import Engine
import Foundation
import Infra
import Kube
import NodeRuntime
import Transport

/// `verify` on K3s (with `k3s.deploy`, `k3s.monitoring` and `k3s.verify`): the pipeline works end
/// to end, the same table as the sandbox's (`K3sVerification` over `PipelineVerifier`), reached
/// through ports forwarded over the control plane's SSH session. Runs after `workloads`; a failed
/// check fails the step with what was seen and where to look next. Its check (for `--recheck`,
/// `status --audit`) is the quick half: the processor is ready, the topics exist, data arrives.
package struct K3sVerifyStep: Step {
    package var id: StepID { VerifyStep.id }
    let settings: K3sSettings

    /// The step for these K3s settings.
    package init(settings: K3sSettings) {
        self.settings = settings
    }

    package var dependencies: [StepID] { [TerraformApplyStep.id, ClusterReadyStep.id, MonitoringStep.id, StepID(DeployStep.Part.workloads.rawValue)] }
    package var inputs: String { "verify k3s \(settings.spec.version) timeout=\(settings.spec.verifyTimeout.formatted)" }
    package var planKeys: [String: String] { settings.spec.planKeys(["version", "verify_timeout"]) }
    package var hasCheck: Bool { true }
    package var retry: RetryPolicy { RetryPolicy(attempts: 2, backoff: .seconds(5), maxBackoff: .seconds(10), timeout: settings.spec.verifyTimeout + .seconds(150)) }

    private func verification(_ context: StepContext) throws -> K3sVerification {
        let inventory = try RuntimeAccess.inventory(context.upstream)
        let control = try settings.access.controlPlane(context)
        return K3sVerification(endpoint: try control.entry.endpoint(identityFile: SSHKeyStep.keyFile(context.stateDirectory).path),
                               pins: HostKeyPins(store: context.store), controlPlane: control, nodes: inventory.nodes.count,
                               maxLatency: settings.pipeline.maxLatency)
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let checks = try await verification(context).checks(timeout: .seconds(10), log: nil)
        let wanted: Set = ["processor /ready", "topics", "gpu_metrics documents rise"]
        if let failed = checks.first(where: { wanted.contains($0.name) && !$0.ok }) {
            return .unsatisfied("\(failed.name): expected \(failed.expected), saw \(failed.seen)")
        }
        return .satisfied(VerifyStep.encode(checks))
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let checks: [PipelineVerifier.Check]
        do {
            checks = try await verification(context).checks(timeout: settings.spec.verifyTimeout) { context.log.write($0) }
        } catch let error as PipelineUnavailable {
            throw StepFailure(error.description)
        }
        return try VerifyStep.outcome(checks, context)
    }
}
