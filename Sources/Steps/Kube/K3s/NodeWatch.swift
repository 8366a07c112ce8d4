import Engine
import Foundation

/// One watcher of node registration for every `k3s.join` of a run: the joins' checks and their
/// polls for their node to be Ready share node listings instead of each
/// asking the control plane on its own.
///
/// Twenty joins polling four times a second would queue twenty API calls on the control
/// plane's SSH session (one command at a time) and on its API server; through the watch, a
/// caller takes the listing in flight or the last one when it began at most `freshness` before
/// the caller asked, and otherwise starts a new one that the callers after it share. A listing
/// that failed is no one's answer: each caller then asks on its own, with its own deadline, as
/// it would without the watch.
package actor NodeWatch {
    /// How old a listing may be (from the moment it began) and still answer a caller: under the
    /// joins' polling interval (250 ms).
    let freshness: Duration

    private var latest: (began: ContinuousClock.Instant, nodes: [KubeNode])?
    private var inFlight: (began: ContinuousClock.Instant, task: Task<[KubeNode], any Error>)?

    init(freshness: Duration = .milliseconds(200)) {
        self.freshness = freshness
    }

    /// The nodes the cluster reports, from a listing begun no earlier than `freshness` before
    /// now, nor before `since` (a join's install ended: only a later listing can show its node);
    /// `list` makes a new listing when there is none.
    func nodes(since: ContinuousClock.Instant? = nil, _ list: @escaping @Sendable () async throws -> [KubeNode]) async throws -> [KubeNode] {
        let oldest = max(ContinuousClock.now - freshness, since ?? ContinuousClock.now - freshness)
        if let latest, latest.began >= oldest { return latest.nodes }
        let began: ContinuousClock.Instant
        let task: Task<[KubeNode], any Error>
        if let current = inFlight, current.began >= oldest {
            (began, task) = current
        } else {
            began = .now
            task = Task { try await list() }
            inFlight = (began, task)
        }
        // Not cancelled with one caller: the others share it (the API call has its own timeout).
        let result = await task.result
        if inFlight?.began == began { inFlight = nil }
        try Task.checkCancellation()
        let nodes = try result.get()
        if latest.map({ $0.began < began }) ?? true { latest = (began, nodes) }
        return nodes
    }
}
