import Foundation

/// A status condition (of a workload, a Pod, a Node).
package struct KubeCondition: Decodable, Sendable, Equatable {
    var type: String?
    var status: String?
    var reason: String?
    var message: String?
}
