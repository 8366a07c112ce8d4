import Engine
import Foundation
import Infra
import Transport

/// What every `runtime: processes` step reads from its context: the cluster inventory that
/// `terraform.apply` recorded, an installer for a node over the run's SSH pool, and the run's
/// snapshot of every unit's state (shared by every step of one graph).
package struct RuntimeAccess: Sendable {
    /// The run's SSH pool; nil in a graph built only to be shown or validated.
    let ssh: SSHPool?
    /// Every unit's state as this run found it, read with one batch per node.
    let readings = UnitReadings()

    /// Access through `ssh` (nil: nothing will be run).
    package init(ssh: SSHPool?) { self.ssh = ssh }

    /// The inventory among a step's upstream outputs.
    package static func inventory(_ upstream: [StepID: StepOutputs]) throws -> ClusterInventory {
        try ClusterInventory(outputs: upstream[TerraformApplyStep.id] ?? [:])
    }

    /// A node as the runtime places services on it: services listen on the address the node's
    /// SSH server answers at (in the sandbox, the node's own loopback address).
    static func runtimeNode(_ node: ClusterInventory.Node, controlPlane: Bool) throws -> RuntimeNode {
        guard let host = node.ssh?.host, !host.isEmpty else {
            throw StepFailure("the inventory has no address for node \(node.name); run 'provision up' so terraform.apply records it", retryable: false)
        }
        return RuntimeNode(name: node.name, address: host, isControlPlane: controlPlane)
    }

    /// Every node of the inventory, the control plane first.
    package static func runtimeNodes(_ inventory: ClusterInventory) throws -> (control: RuntimeNode, workers: [RuntimeNode]) {
        guard let control = inventory.controlPlane else { throw StepFailure("the inventory has no node; run 'provision up'", retryable: false) }
        return (try runtimeNode(control, controlPlane: true), try inventory.workers.map { try runtimeNode($0, controlPlane: false) })
    }

    /// An installer for `node`, over the run's pool, its commands marked as `context`'s attempt.
    package func installer(_ node: String, _ context: StepContext) throws -> ServiceInstaller {
        guard let ssh else {
            throw StepFailure("\(context.stepID) was built without an SSH pool; run it through 'provision up'", retryable: false)
        }
        guard let entry = try Self.inventory(context.upstream).node(named: node) else {
            throw StepFailure("node \(node) is not in the cluster inventory; run 'provision up'", retryable: false)
        }
        return ServiceInstaller(pool: ssh, endpoint: try entry.endpoint(identityFile: SSHKeyStep.keyFile(context.stateDirectory).path),
                                attempt: RemoteAttempt(context), initSystem: entry.initSystem ?? .openrc)
    }

    /// Runs read-only commands on `node` outside any attempt (they stop nothing an earlier attempt
    /// left running): the batches of `readings`.
    func reader(_ node: ClusterInventory.Node, _ context: StepContext) throws -> any CommandRunner {
        guard let ssh else {
            throw StepFailure("\(context.stepID) was built without an SSH pool; run it through 'provision up'", retryable: false)
        }
        return NodeCommandRunner(pool: ssh, endpoint: try node.endpoint(identityFile: SSHKeyStep.keyFile(context.stateDirectory).path))
    }

    /// The part of the inventory a step placed on `nodes` depends on: their machines and routes.
    package static func scope(_ upstream: [StepID: StepOutputs], nodes: (ClusterInventory) -> [String]) -> [StepID: StepOutputs] {
        let outputs = upstream[TerraformApplyStep.id] ?? [:]
        guard let inventory = try? ClusterInventory(outputs: outputs) else { return upstream }
        var scoped = upstream
        var share: StepOutputs = [:]
        for name in nodes(inventory) {
            for (key, value) in ClusterInventory.share(of: name, in: outputs) { share["\(name).\(key)"] = value }
        }
        scoped[TerraformApplyStep.id] = share
        return scoped
    }
}
