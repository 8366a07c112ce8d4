import Foundation
import JSON

/// A K3s HelmChart (helm.cattle.io/v1) as rendered or as the API answers it: its spec kept whole,
/// to compare field by field, and helm-controller's conditions.
package struct KubeHelmChart: Decodable, Sendable {
    struct Metadata: Decodable, Sendable { var name: String? }
    struct Status: Decodable, Sendable { var conditions: [KubeCondition]? }

    var metadata: Metadata?
    var spec: JSONValue?
    var status: Status?

    /// `spec.<field>` when it is a string (`chart`, `version`, `repo`).
    func spec(_ field: String) -> String? { spec?[field]?.string }
}
