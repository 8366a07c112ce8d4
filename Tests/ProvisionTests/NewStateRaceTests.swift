import Foundation
import TestSupport
import Testing
@testable import Engine

/// Two `up` started at the same moment on a state directory that does not exist yet.
@Suite struct NewStateRaceTests {
    static let plan = """
        name: race
        steps:
          - id: slow
            exec:
              run: while [ ! -f release ]; do sleep 0.05; done
        """

    @Test func concurrentUpOnANewStateRunsOnceAndTheOtherGetsTheLockErrorNamingTheHolder() async throws {
        for pair in 1...10 {
            let cli = CLI()
            defer { cli.cleanUp() }
            let plan = cli.write("plan.yaml", Self.plan)
            let a = try cli.start(["up", "--plan", plan])
            let b = try cli.start(["up", "--plan", plan])
            // The step runs until released, so the two overlap however late a loaded machine starts
            // the second: the loser ends at once, the winner when released (both running after two
            // minutes would be the race this test is for; the assertions below then fail).
            try? await waitUntil(timeout: .seconds(120), every: .milliseconds(50)) { !a.isRunning || !b.isRunning }
            _ = cli.write("release", "")
            try await a.finish()
            try await b.finish()
            let results = [(a, b), (b, a)]
            let winners = results.filter { $0.0.exitCode == 0 }
            #expect(winners.count == 1, "pair \(pair): exits \(a.exitCode), \(b.exitCode): \(a.stderr) | \(b.stderr)")
            guard let (winner, loser) = winners.first else { continue }
            #expect(loser.exitCode == 3, "pair \(pair): \(loser.stderr)")
            #expect(loser.stderr.contains("locked by pid \(winner.pid) on host"), "pair \(pair): \(loser.stderr)")
            #expect(!loser.stderr.contains("already exists"), "pair \(pair): \(loser.stderr)")
            #expect(try cli.store(plan: "race").integrityCheck() == "ok")
        }
    }
}
