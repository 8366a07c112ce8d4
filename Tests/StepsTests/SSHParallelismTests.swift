@testable import App
import Engine
import Foundation
@testable import Infra
@testable import PlanLanguage
import Testing

/// `--parallelism` bounds SSH too: the run's one pool takes the effective parallelism, not the plan's.
@Suite(.serialized) struct SSHParallelismTests {
    @Test func parallelismTwoCapsConcurrentSSHSessionsAtTwo() async throws {
        try await withSandboxNodes { nodes in
            let hosts = try await nodes.start(4)
            let plan = try PlanLoader.parse(Data("name: p\ntarget: sandbox\nparallelism: 10\ncluster: {worker_count: 3}\n".utf8),
                                            path: nodes.directory.appendingPathComponent("p.yaml").path)
            let run = try Workspace.runGraph(plan, secrets: [:], store: nodes.store, parallelism: 2)
            #expect(run.parallelism == 2 && run.ssh.parallelism == 2, "--parallelism 2 overrides the plan's 10")
            guard case .fanOut(let fanOut)? = run.graph.nodes[NodeReadyStep.id], let step = fanOut.make("worker-1") as? NodeReadyStep else {
                throw StepFailure("no node.ready fan-out")
            }
            #expect(step.ssh === run.ssh, "node steps share the run's pool")

            // Eight commands at once on four hosts, each holding its session for a while.
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    let endpoint = nodes.endpoint(hosts[index % hosts.count])
                    group.addTask { _ = try await run.ssh.run("sleep 0.3", on: endpoint) }
                }
                try await group.waitForAll()
            }
            #expect(await run.ssh.peakInFlight == 2, "never more than two SSH sessions busy at once")
            #expect(ContinuousClock.now - started >= .milliseconds(1200), "eight 0.3 s commands two at a time take at least 1.2 s")
            await run.ssh.closeAll()
        }
    }
}
