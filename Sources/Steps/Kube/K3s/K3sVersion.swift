import Engine
import Foundation

/// A K3s release (`v1.33.4+k3s1`), ordered as releases are: Kubernetes' major, minor and patch,
/// then K3s's own build.
package struct K3sVersion: Comparable, Sendable {
    let parts: [Int]

    /// Nil for a text that is not `v<major>.<minor>.<patch>[-rc...]+k3s<n>`-like.
    init?(_ text: String) {
        let trimmed = text.hasPrefix("v") ? text.dropFirst() : Substring(text)
        let (core, build) = trimmed.split(separator: "+", maxSplits: 1).map(String.init).pairs
        let numbers = core.split(separator: "-").first.map { $0.split(separator: ".").compactMap { Int($0) } } ?? []
        guard numbers.count == 3 else { return nil }
        parts = numbers + [Int(build.drop { !$0.isNumber }.prefix { $0.isNumber }) ?? 0]
    }

    package static func < (a: K3sVersion, b: K3sVersion) -> Bool { a.parts.lexicographicallyPrecedes(b.parts) }

    /// The error for a node that runs a newer release than the pin: K3s does not support
    /// downgrades (the datastore may already hold the newer schema), so nothing is touched.
    static func refuseDowngrade(node: String, runs: String, planned: String) throws {
        guard let running = K3sVersion(runs), let pinned = K3sVersion(planned), pinned < running else { return }
        throw StepFailure("""
            \(node) runs K3s \(runs), newer than \(planned) that k3s.version pins: K3s does not support downgrades, so nothing was changed; \
            pin \(runs) (or a newer release) again, then run 'provision up' (to go back, restore the cluster from a backup taken before the upgrade)
            """, retryable: false)
    }
}

private extension Array where Element == String {
    /// (first, second or "").
    var pairs: (String, String) { (first ?? "", count > 1 ? self[1] : "") }
}
