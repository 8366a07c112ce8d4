import Foundation

/// The fields provision reads of a Pod: who it is and why its containers do not run.
package struct KubePod: Decodable, Sendable {
    package struct Metadata: Decodable, Sendable {
        package struct Owner: Decodable, Sendable { var kind: String?; var name: String?; var uid: String? }
        package var name: String?
        package var namespace: String?
        package var labels: [String: String]?
        /// RFC 3339, so that text order is time order.
        package var creationTimestamp: String?
        package var ownerReferences: [Owner]?
    }

    package struct ContainerStatus: Decodable, Sendable {
        package struct State: Decodable, Sendable {
            package struct Waiting: Decodable, Sendable { var reason: String?; var message: String? }
            package struct Terminated: Decodable, Sendable { var exitCode: Int?; var reason: String? }
            package var waiting: Waiting?
            package var terminated: Terminated?
        }
        package var name: String?
        package var restartCount: Int?
        package var state: State?
        package var lastState: State?
    }

    package struct Status: Decodable, Sendable {
        /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
        package var phase: String?
        /// Why a pod failed as a whole (`Evicted`, `DeadlineExceeded`).
        package var reason: String?
        package var conditions: [KubeCondition]?
        package var initContainerStatuses: [ContainerStatus]?
        package var containerStatuses: [ContainerStatus]?
    }

    package var metadata: Metadata?
    package var status: Status?
}
