import Foundation

/// The fields provision reads of a Service: where it answers in the cluster.
package struct KubeService: Decodable, Sendable {
    struct Spec: Decodable, Sendable {
        struct Port: Decodable, Sendable { var port: Int? }
        /// "None" for a headless Service.
        var clusterIP: String?
        var ports: [Port]?
    }
    var spec: Spec?
}
