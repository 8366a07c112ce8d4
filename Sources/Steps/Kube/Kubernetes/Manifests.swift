import Digest
import Foundation
import JSON
import Yams

/// A rendered set of manifests: the objects of one namespace from a kustomize overlay, as JSON
/// (what the control plane receives: a `v1 List` that an apply reads), with a digest.
package struct Manifests: Sendable {
    /// Each object as canonical JSON (sorted keys), in the order kustomize rendered them.
    let objects: [(id: KubeObject, json: String)]

    /// The identities, sorted.
    var ids: [KubeObject] { objects.map(\.id).sorted() }

    /// A `v1 List` holding every object.
    var list: Data { Data("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\(objects.map(\.json).joined(separator: ","))]}".utf8) }

    /// The SHA-256 of the objects' canonical JSON.
    var digest: String { SHA256.hex(objects.map(\.json).joined(separator: "\n")) }

    /// API groups whose objects belong to the monitoring step (their CRDs come with its charts).
    static let monitoringGroups = ["helm.cattle.io", "monitoring.coreos.com"]

    /// The objects of `yaml` (kustomize's output, several documents) in `namespace`: those whose
    /// `metadata.namespace` is it and the Namespace itself, less the monitoring step's kinds, with
    /// the plan's `values` written in.
    static func select(_ yaml: String, namespace: String, values: PipelineValues? = nil) throws -> Manifests {
        var objects: [(id: KubeObject, json: String)] = []
        let documents = try Yams.compose_all(yaml: yaml).map(plain).filter { if case .object = $0 { true } else { false } }
        for value in values?.apply(to: documents) ?? documents {
            guard let id = KubeObject(manifest: value) else { continue }
            let mine = (id.kind == "Namespace" && id.apiVersion == "v1") ? id.name == namespace : id.namespace == namespace
            guard mine, !monitoringGroups.contains(id.group) else { continue }
            objects.append((id, String(decoding: value.compactData, as: UTF8.self)))
        }
        return Manifests(objects: objects)
    }

    /// A YAML node as JSON values, resolving plain scalars as YAML 1.2's core schema does (quoted
    /// scalars stay strings: "8080" and "yes" are not a number and a boolean).
    static func plain(_ node: Yams.Node) -> JSONValue {
        switch node {
        case .mapping(let mapping):
            var result: [String: JSONValue] = [:]
            for (key, value) in mapping { result[key.string ?? ""] = plain(value) }
            return .object(result)
        case .sequence(let sequence):
            return .array(sequence.map(plain))
        case .scalar(let scalar):
            guard scalar.style == .plain else { return .string(scalar.string) }
            let text = scalar.string
            switch text {
            case "null", "Null", "NULL", "~", "": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if text.range(of: #"^[-+]?[0-9]+$"#, options: .regularExpression) != nil, let int = Int(text) { return .int(int) }
            if text.range(of: #"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil, let double = Double(text) {
                return .number(double)
            }
            return .string(text)
        case .alias:
            return .null
        }
    }
}
