import Foundation

/// The fields provision reads of a Deployment, StatefulSet or Job as the API server answers them
/// (`kubectl get -o json`); every field optional, as the API may leave any out.
struct KubeWorkload: Decodable, Sendable {
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

/// A status condition (of a workload, a Pod, a Node).
struct KubeCondition: Decodable, Sendable, Equatable {
    var type: String?
    var status: String?
    var reason: String?
    var message: String?
}

/// A label selector's `matchLabels` (`matchExpressions` are not used by the k8s/ tree).
struct KubeSelector: Decodable, Sendable {
    var matchLabels: [String: String]?

    /// Whether `labels` match: every wanted label, and at least one wanted.
    func matches(_ labels: [String: String]?) -> Bool {
        let wanted = matchLabels ?? [:]
        return !wanted.isEmpty && wanted.allSatisfy { labels?[$0.key] == $0.value }
    }
}

/// The fields provision reads of a Pod: who it is and why its containers do not run.
struct KubePod: Decodable, Sendable {
    struct Metadata: Decodable, Sendable {
        struct Owner: Decodable, Sendable { var kind: String?; var name: String?; var uid: String? }
        var name: String?
        var namespace: String?
        var labels: [String: String]?
        /// RFC 3339, so that text order is time order.
        var creationTimestamp: String?
        var ownerReferences: [Owner]?
    }

    struct ContainerStatus: Decodable, Sendable {
        struct State: Decodable, Sendable {
            struct Waiting: Decodable, Sendable { var reason: String?; var message: String? }
            struct Terminated: Decodable, Sendable { var exitCode: Int?; var reason: String? }
            var waiting: Waiting?
            var terminated: Terminated?
        }
        var name: String?
        var restartCount: Int?
        var state: State?
        var lastState: State?
    }

    struct Status: Decodable, Sendable {
        /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
        var phase: String?
        /// Why a pod failed as a whole (`Evicted`, `DeadlineExceeded`).
        var reason: String?
        var conditions: [KubeCondition]?
        var initContainerStatuses: [ContainerStatus]?
        var containerStatuses: [ContainerStatus]?
    }

    var metadata: Metadata?
    var status: Status?
}

/// A `kubectl get -o json` answer: a `List` of items, or one object when one was asked for.
struct KubeList<Item: Decodable & Sendable>: Decodable, Sendable {
    var items: [Item]

    private enum Keys: String, CodingKey { case kind, items }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        if try container.decodeIfPresent(String.self, forKey: .kind) == "List" || container.contains(.items) {
            items = try container.decodeIfPresent([Item].self, forKey: .items) ?? []
        } else {
            items = [try Item(from: decoder)]
        }
    }

    /// The items of `json`; nil when it is not such an answer.
    static func decode(_ json: String) -> [Item]? {
        try? JSONDecoder().decode(Self.self, from: Data(json.utf8)).items
    }
}

/// The fields provision reads of a Service: where it answers in the cluster.
struct KubeService: Decodable, Sendable {
    struct Spec: Decodable, Sendable {
        struct Port: Decodable, Sendable { var port: Int? }
        /// "None" for a headless Service.
        var clusterIP: String?
        var ports: [Port]?
    }
    var spec: Spec?
}

/// A K3s HelmChart (helm.cattle.io/v1) as rendered or as the API answers it: its spec kept whole,
/// to compare field by field, and helm-controller's conditions.
struct KubeHelmChart: Decodable, Sendable {
    struct Metadata: Decodable, Sendable { var name: String? }
    struct Status: Decodable, Sendable { var conditions: [KubeCondition]? }

    var metadata: Metadata?
    var spec: JSONValue?
    var status: Status?

    /// `spec.<field>` when it is a string (`chart`, `version`, `repo`).
    func spec(_ field: String) -> String? { spec?[field]?.string }
}
