import Foundation
import JSON

/// One Kubernetes object as the deploy steps name it: its API version, kind, namespace and name.
/// Written as `apps/v1 Deployment app/processor` in step outputs and the store.
package struct KubeObject: Sendable, Hashable, Comparable, CustomStringConvertible {
    var apiVersion: String
    var kind: String
    /// "" for cluster-scoped objects (Namespace).
    var namespace: String
    var name: String

    /// The API group ("" for the core group).
    var group: String { apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : "" }

    /// The resource type as the typed client names it: `deployment.apps`, `configmap`.
    var resource: String { kind.lowercased() + (group.isEmpty ? "" : ".\(group)") }

    /// `deployment.apps/processor`.
    var reference: String { "\(resource)/\(name)" }

    package var description: String { "\(apiVersion) \(kind) \(namespace.isEmpty ? "" : namespace + "/")\(name)" }

    package static func < (a: KubeObject, b: KubeObject) -> Bool { a.description < b.description }

    init(apiVersion: String, kind: String, namespace: String, name: String) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// The identity of a decoded manifest; nil when it lacks apiVersion, kind or name.
    init?(manifest: JSONValue) {
        guard let apiVersion = manifest["apiVersion"]?.string, let kind = manifest["kind"]?.string, let name = manifest["metadata"]?["name"]?.string else { return nil }
        self.init(apiVersion: apiVersion, kind: kind, namespace: manifest["metadata"]?["namespace"]?.string ?? "", name: name)
    }

    /// Parses `description`.
    init?(_ text: String) {
        let parts = text.split(separator: " ").map(String.init)
        guard parts.count == 3 else { return nil }
        let path = parts[2].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard path.count <= 2, !path.last!.isEmpty else { return nil }
        self.init(apiVersion: parts[0], kind: parts[1], namespace: path.count == 2 ? path[0] : "", name: path.last!)
    }
}
