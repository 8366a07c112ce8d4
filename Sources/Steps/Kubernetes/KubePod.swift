import Foundation

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
