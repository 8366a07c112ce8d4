import Engine
import Foundation

/// A node as the Kubernetes API reports it (`kubectl get nodes -o json`): what the K3s steps read.
struct KubeNode: Sendable, Equatable {
    /// `metadata.name`.
    var name: String
    /// `status.nodeInfo.kubeletVersion` (K3s reports its own version, `v1.33.4+k3s1`).
    var version: String
    /// The `Ready` condition's status (`True`, `False`, `Unknown`; "" when it has none).
    var ready: String
    /// The `Ready` condition's reason and message, for errors.
    var reason: String
    var message: String

    /// Ready, as the scheduler sees it.
    var isReady: Bool { ready == "True" }

    /// "NotReady (KubeletNotReady: container runtime network not ready)".
    var condition: String {
        let detail = [reason, message].filter { !$0.isEmpty }.joined(separator: ": ")
        return (isReady ? "Ready" : "NotReady") + (detail.isEmpty ? "" : " (\(detail))")
    }

    /// Decodes a `NodeList`.
    static func list(_ data: Data) throws -> [KubeNode] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let items = object["items"] as? [[String: Any]] else {
            throw StepFailure("'kubectl get nodes -o json' did not answer a NodeList: \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return items.map { item in
            let metadata = item["metadata"] as? [String: Any] ?? [:]
            let status = item["status"] as? [String: Any] ?? [:]
            let info = status["nodeInfo"] as? [String: Any] ?? [:]
            let ready = (status["conditions"] as? [[String: Any]] ?? []).first { $0["type"] as? String == "Ready" } ?? [:]
            return KubeNode(name: metadata["name"] as? String ?? "", version: info["kubeletVersion"] as? String ?? "",
                            ready: ready["status"] as? String ?? "", reason: ready["reason"] as? String ?? "", message: ready["message"] as? String ?? "")
        }
    }
}
