import Foundation

/// A label selector's `matchLabels` (`matchExpressions` are not used by the k8s/ tree).
package struct KubeSelector: Decodable, Sendable {
    var matchLabels: [String: String]?

    /// Whether `labels` match: every wanted label, and at least one wanted.
    func matches(_ labels: [String: String]?) -> Bool {
        let wanted = matchLabels ?? [:]
        return !wanted.isEmpty && wanted.allSatisfy { labels?[$0.key] == $0.value }
    }
}
