import Foundation

/// The fields provision reads of a Deployment, StatefulSet or Job as the API server answers them
/// (a `get` as JSON); every field optional, as the API may leave any out.
package struct KubeWorkload: Decodable, Sendable {
    struct Metadata: Decodable, Sendable {
        var name: String?
        var namespace: String?
        var uid: String?
        var generation: Int?
    }

    struct Spec: Decodable, Sendable {
        struct Strategy: Decodable, Sendable { var type: String? }
        var replicas: Int?
        /// A Job's.
        var completions: Int?
        /// A StatefulSet's.
        var updateStrategy: Strategy?
        var selector: KubeSelector?
    }

    struct Status: Decodable, Sendable {
        var observedGeneration: Int?
        var replicas: Int?
        var updatedReplicas: Int?
        var readyReplicas: Int?
        var availableReplicas: Int?
        var currentRevision: String?
        var updateRevision: String?
        /// A Job's.
        var succeeded: Int?
        var active: Int?
        var conditions: [KubeCondition]?
    }

    var kind: String?
    var metadata: Metadata?
    var spec: Spec?
    var status: Status?

    /// The status condition of `type` when it is "True".
    func condition(_ type: String) -> KubeCondition? {
        status?.conditions?.first { $0.type == type && $0.status == "True" }
    }
}
