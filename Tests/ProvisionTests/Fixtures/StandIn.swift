@testable import App
import Foundation
@testable import Kube
@testable import PlanLanguage
import TestSupport

/// What the K3s stand-in (Tests/K3sStandIn) keeps on the control plane, as the K3s suites read
/// and set it: the objects it holds, the applies it counted, its faults.
enum StandIn {
    /// The stand-in's files on the control plane.
    static let standin = "/var/lib/rancher/k3s/server/standin"

    /// What the stand-in holds: `kind/namespace/name` of every object (namespace "" when cluster-scoped).
    static func held(_ nodes: SandboxNodes) async throws -> Set<String> {
        let text = try await nodes.run("cat \(standin)/objects.json 2>/dev/null || echo '{}'", on: nodes.control).stdout
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        return Set(object.keys)
    }

    /// How many objects the stand-in's kubectl has been asked to apply.
    static func applyCount(_ nodes: SandboxNodes) async throws -> Int {
        Int(try await nodes.run("cat \(standin)/applies 2>/dev/null | wc -l", on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Each object kubectl was asked to apply, in order (`kind/namespace/name`).
    static func appliedLines(_ nodes: SandboxNodes) async throws -> [String] {
        try await nodes.run("cat \(standin)/applies 2>/dev/null", on: nodes.control).stdout.split(separator: "\n").map(String.init)
    }

    /// The k8s/ tree in `tree` rendered here, as the stand-in keys its objects: the platform and
    /// app namespaces (less the monitoring step's kinds), and the Secrets provision generates.
    static func rendered(_ tree: URL) throws -> Set<String> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["kubectl", "kustomize", tree.appendingPathComponent("overlays/aws").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let yaml = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var keys: Set<String> = ["secret/platform/kafka-cluster", "secret/platform/mongodb-credentials", "secret/app/processor-mongodb"]
        for namespace in ["platform", "app"] {
            for id in try Manifests.select(yaml, namespace: namespace, values: PipelineValues(pipeline: PipelineSpec())).ids { keys.insert("\(id.kind.lowercased())/\(id.namespace)/\(id.name)") }
        }
        return keys
    }

    /// Sets the stand-in's faults (one per line; "" clears them).
    static func fault(_ text: String, _ nodes: SandboxNodes) async throws {
        _ = try await nodes.run("mkdir -p \(standin) && printf '%s\\n' '\(text)' > \(standin)/faults", on: nodes.control)
    }
}
