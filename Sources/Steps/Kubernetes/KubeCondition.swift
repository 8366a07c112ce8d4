import Foundation

/// A status condition (of a workload, a Pod, a Node).
struct KubeCondition: Decodable, Sendable, Equatable {
    var type: String?
    var status: String?
    var reason: String?
    var message: String?
}
