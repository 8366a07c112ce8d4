import Engine
import Foundation
import Transport

/// What a deploying step (`monitoring`, `platform`, `workloads`) applied, kept in the store to
/// prune by: resource kind `k8s.applied`, keyed by the step's id; and what such steps do alike:
/// rendering the overlay, asking which applied objects are missing, and deleting what the last
/// apply made and this one does not.
package struct AppliedSet: Sendable {
    /// The resource kind of the applied sets in the store.
    static let resourceKind = "k8s.applied"

    /// The digest of the set applied last ("" while an apply is under way) and the objects that may exist.
    struct Record: Codable {
        var digest: String
        var objects: [String]
        var ids: [KubeObject] { objects.compactMap(KubeObject.init) }
    }

    /// The step whose set this is.
    let step: StepID

    /// The record; nil before the step's first apply.
    func recorded(_ context: StepContext) -> Record? {
        guard let text = try? context.store.resources(kind: Self.resourceKind)[step.rawValue] else { return nil }
        return try? JSONDecoder().decode(Record.self, from: Data(text.utf8))
    }

    /// Records `record`, replacing the last.
    func record(_ record: Record, _ context: StepContext) throws {
        try context.store.saveResource(kind: Self.resourceKind, key: step.rawValue, value: String(decoding: try JSONEncoder().encode(record), as: UTF8.self))
    }

    /// Deletes `stale` from the cluster, namespaces last (`--ignore-not-found`: a resumed prune repeats).
    static func prune(_ stale: [KubeObject], on control: K3sNode, context: StepContext) async throws {
        for object in stale.sorted(by: { ($0.kind == "Namespace" ? 1 : 0, $0) < ($1.kind == "Namespace" ? 1 : 0, $1) }) {
            try await control.kube().delete(object.resource, object.name, namespace: object.namespace, ignoreNotFound: true, what: "pruning \(object)")
            context.log.write("pruned \(object) (no longer rendered)")
        }
    }

    /// What of `objects` the cluster does not have; "" when it has them all. Jobs are left out: a
    /// finished Job goes away by itself (`ttlSecondsAfterFinished`), and that is no drift.
    static func missing(_ objects: [KubeObject], on control: K3sNode) async throws -> String {
        var problems: [String] = []
        let lasting = objects.filter { !($0.kind == "Job" && $0.group == "batch") }
        for (namespace, group) in Dictionary(grouping: lasting, by: \.namespace).sorted(by: { $0.key < $1.key }) {
            let result = try await control.kube().names(group.map(\.reference), namespace: namespace)
            if !result.succeeded { problems.append(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return problems.joined(separator: "; ")
    }

    /// The overlay rendered here by kustomize (`Kubectl.kustomize`), its YAML.
    static func render(_ overlay: URL, _ context: StepContext) async throws -> String {
        try await Kubectl.kustomize(overlay, runner: LocalCommandRunner(processes: context.processes, redactor: context.redactor, log: nil))
    }
}
