import Engine
import Foundation
import Transport

/// What the nodes say about every unit of `runtime: processes`, read once per run for the checks
/// of the service steps that are already succeeded and unchanged (the checks every `up` makes).
///
/// The first such check starts one `CommandBatch` per node, on every node at once: each unit's
/// state script and the broker's topic list, run concurrently on the node, in one round trip.
/// Every later check of the run takes its answer from there, so a no-op `up` costs one round trip
/// per node (and the nodes' SSH handshakes overlap) instead of one round trip per unit, one after
/// another along the step graph.
///
/// The readings are a snapshot of the world as the run found it. Once any step of the runtime
/// applies or tears down (starts, restarts or removes something on a node), they are stale and
/// every later check reads its node live, as does a check whose command the snapshot does not
/// hold or whose node's batch failed.
package actor UnitReadings {
    /// One node's batch, and what runs it there.
    struct NodeBatch: Sendable {
        let runner: any CommandRunner
        let batch: CommandBatch
    }

    private var batches: [String: Task<[String: String]?, Never>] = [:]
    private var started = false
    private var stale = false

    /// The output `command` gave on `node` in this run's snapshot, taking the snapshot (every
    /// node's batch at once, from `plan`) on first use; nil when the caller must run it live.
    func output(of command: String, on node: String, plan: @Sendable () throws -> [String: NodeBatch]) async -> String? {
        guard !stale else { return nil }
        if !started {
            guard let planned = try? plan() else { return nil }
            started = true
            for (name, node) in planned {
                batches[name] = Task {
                    guard let outputs = try? await node.batch.run(on: node.runner, timeout: .seconds(40)) else { return nil }
                    return Dictionary(zip(node.batch.commands, outputs), uniquingKeysWith: { first, _ in first })
                }
            }
        }
        guard let batch = batches[node] else { return nil }
        let outputs = await withTaskCancellationHandler { await batch.value } onCancel: { batch.cancel() }
        return stale ? nil : outputs?[command]
    }

    /// Marks the snapshot stale: something on a node is about to change.
    func invalidate() {
        stale = true
    }

    /// Whether the snapshot was taken (for tests).
    var taken: Bool { started }
}
