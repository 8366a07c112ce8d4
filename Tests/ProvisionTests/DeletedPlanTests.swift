import Foundation
import TestSupport
import Testing
@testable import Engine

#if canImport(Glibc)
import Glibc
#endif

/// A plan file deleted after a run started does not strand its state: `status`, `unlock`,
/// `resume` and `down` find the state and use the plan text the run stored.
@Suite struct DeletedPlanTests {
    static let plan = """
        name: vanishing
        steps:
          - id: wait
            exec:
              run: while [ ! -f release ]; do sleep 0.05; done; touch made
              check: test -f made
              down: rm -f made
          - id: after
            needs: [wait]
            exec: {run: touch after, down: rm -f after}
        """

    @Test func deletedPlanFileDoesNotBlockStatusUnlockResumeAndDown() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        // The file's base name differs from the plan's name: the state is found by the recorded path.
        let plan = cli.write("gone.yaml", Self.plan)
        let first = try cli.start(["up", "--plan", plan])
        defer { if first.isRunning { kill(first.pid, SIGKILL); first.wait() } }
        try await waitUntil { (try? cli.store(plan: "vanishing").steps()["wait"]?.state) == .running }
        kill(first.pid, SIGKILL)
        first.wait()
        try FileManager.default.removeItem(atPath: plan)

        let status = try await cli.run(["status", "--plan", plan])
        #expect(status.code == 0, "\(status.stderr)")
        #expect(status.stdout.contains("STALE"), "\(status.stdout)")
        #expect(status.stdout.contains("wait"))
        #expect(status.stderr.contains("does not exist; using the plan 'vanishing' as run 1 stored it"), "\(status.stderr)")

        let unlock = try await cli.run(["unlock", "--plan", plan])
        #expect(unlock.code == 0, "\(unlock.stderr)")
        #expect(unlock.stdout.contains("pid \(first.pid)"))

        _ = cli.write("release", "")
        let resume = try await cli.run(["resume", "--plan", plan])
        #expect(resume.code == 0, "\(resume.stderr)")
        #expect(FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("after").path))

        let down = try await cli.run(["down", "--plan", plan])
        #expect(down.code == 0, "\(down.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("after").path))
        #expect(try cli.store(plan: "vanishing").steps()["wait"]?.state == .destroyed)
    }

    @Test func deletedPlanFileIsFoundByItsBaseNameWhenThePathDiffers() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("named.yaml", "name: named\nsteps:\n  - id: a\n    exec: {run: 'true'}\n")
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
        try FileManager.default.removeItem(atPath: plan)
        let status = try await cli.run(["status", "--plan", "elsewhere/named.yaml"])
        #expect(status.code == 0, "\(status.stderr)")
        #expect(status.stdout.contains("succeeded"), "\(status.stdout)")
    }

    @Test func deletedPlanFileWithNoStateStillSaysHowToPassOne() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["down", "--plan", "missing.yaml"])
        #expect(result.code == 2)
        #expect(result.stderr.contains("no plan file here"))
        #expect(result.stderr.contains("pass --plan"))
    }
}
