import Engine
import Foundation

/// A node as the Kubernetes API reports it (its node listing as JSON): what the K3s steps read.
package struct KubeNode: Sendable, Equatable {
    /// `metadata.name`.
    var name: String
    /// `status.nodeInfo.kubeletVersion` (K3s reports its own version, `v1.33.4+k3s1`).
    var version: String
    /// The `Ready` condition's status (`True`, `False`, `Unknown`; "" when it has none).
    var ready: String
    /// The `Ready` condition's reason and message, for errors.
    var reason: String
    var message: String
    /// `spec.unschedulable`: cordoned (no new pod is placed on it).
    var unschedulable = false

    /// Ready, as the scheduler sees it.
    var isReady: Bool { ready == "True" }

    /// "NotReady (KubeletNotReady: container runtime network not ready)".
    var condition: String {
        let detail = [reason, message].filter { !$0.isEmpty }.joined(separator: ": ")
        return (isReady ? "Ready" : "NotReady") + (detail.isEmpty ? "" : " (\(detail))")
    }

    /// Decodes a `NodeList`.
    static func list(_ data: Data) throws -> [KubeNode] {
        guard let list = try? JSONDecoder().decode(NodeList.self, from: data) else {
            throw StepFailure("the API's node listing was no NodeList: \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return list.items.map { item in
            let ready = item.status?.conditions?.first { $0.type == "Ready" }
            return KubeNode(name: item.metadata?.name ?? "", version: item.status?.nodeInfo?.kubeletVersion ?? "",
                            ready: ready?.status ?? "", reason: ready?.reason ?? "", message: ready?.message ?? "",
                            unschedulable: item.spec?.unschedulable ?? false)
        }
    }

    /// The fields of a `NodeList` this type reads.
    private struct NodeList: Decodable {
        struct Item: Decodable {
            struct Metadata: Decodable { var name: String? }
            struct Spec: Decodable { var unschedulable: Bool? }
            struct Status: Decodable {
                struct Info: Decodable { var kubeletVersion: String? }
                struct Condition: Decodable { var type: String; var status: String?; var reason: String?; var message: String? }
                var nodeInfo: Info?
                var conditions: [Condition]?
            }
            var metadata: Metadata?
            var spec: Spec?
            var status: Status?
        }
        var items: [Item]
    }
}
