@testable import App
import Engine
import Foundation
@testable import Kube
import Testing

/// The joins' one watcher of node registration: concurrent callers share a listing, and no caller
/// is answered by a listing older than it may be.
struct NodeWatchTests {
    /// A cluster whose listings are counted.
    actor Cluster {
        private(set) var listings = 0
        var nodes: [KubeNode] = []
        var failing = false
        func list() throws -> [KubeNode] {
            listings += 1
            if failing { throw StepFailure("the API server answered 503") }
            return nodes
        }
        func add(_ name: String) { nodes.append(KubeNode(name: name, version: "v1.33.4+k3s1", ready: "True", reason: "", message: "")) }
        func fail(_ value: Bool) { failing = value }
    }

    @Test func twentyJoinsAskingAtOnceShareOneListing() async throws {
        let cluster = Cluster()
        await cluster.add("worker-1")
        let watch = NodeWatch(freshness: .seconds(30))
        let seen = try await withThrowingTaskGroup(of: [KubeNode].self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await watch.nodes {
                        try await Task.sleep(for: .milliseconds(200))  // a kubectl call takes a while
                        return try await cluster.list()
                    }
                }
            }
            return try await group.reduce(into: [[KubeNode]]()) { $0.append($1) }
        }
        #expect(seen.count == 20 && seen.allSatisfy { $0.map(\.name) == ["worker-1"] })
        #expect(await cluster.listings == 1, "one listing answered all twenty")
    }

    @Test func aListingBegunBeforeTheCallerMayUseItIsNotReused() async throws {
        let cluster = Cluster()
        // Fresh for an hour: a full parallel test run can keep this task waiting for a thread for
        // over 30 s between two calls, and this test is about `since`, not the clock.
        let watch = NodeWatch(freshness: .seconds(3600))
        #expect(try await watch.nodes { try await cluster.list() }.isEmpty)
        await cluster.add("worker-1")
        #expect(try await watch.nodes { try await cluster.list() }.isEmpty, "within its freshness the last listing answers")
        let installed = ContinuousClock.now
        let after = try await watch.nodes(since: installed) { try await cluster.list() }
        #expect(after.map(\.name) == ["worker-1"], "only a listing begun after the install ended shows its node")
        #expect(await cluster.listings == 2)

        let stale = NodeWatch(freshness: .zero)
        _ = try await stale.nodes { try await cluster.list() }
        _ = try await stale.nodes { try await cluster.list() }
        #expect(await cluster.listings == 4, "a listing older than the freshness is never reused")
    }

    @Test func aFailedListingIsNoOnesLastAnswer() async throws {
        let cluster = Cluster()
        await cluster.add("worker-1")
        await cluster.fail(true)
        let watch = NodeWatch(freshness: .seconds(30))
        await #expect(throws: StepFailure.self) { try await watch.nodes { try await cluster.list() } }
        await cluster.fail(false)
        #expect(try await watch.nodes { try await cluster.list() }.map(\.name) == ["worker-1"], "the next caller lists again")
    }
}
