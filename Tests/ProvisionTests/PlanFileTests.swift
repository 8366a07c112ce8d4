import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What `--plan` points at is checked before the plan is read: too big, too many steps, or not a
/// plan file at all (a directory, a FIFO, /dev/null) is refused with exit 2 and says which.
@Suite struct PlanFileTests {
    @Test func planLargerThanOneMebibyteIsRefusedUnreadWithExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        // 64 GiB, sparse: the message can only give this size if it came from stat. Read, the plan
        // would be refused one 64 KiB chunk past 1 MiB ("1.1 MiB"), and more than this machine's memory.
        let plan = cli.write("big.yaml", "name: big\nsteps:\n  - id: a\n    exec: {run: 'true'}\n")
        let handle = try #require(FileHandle(forWritingAtPath: plan))
        try handle.truncate(atOffset: 64 << 30)
        try handle.close()
        let result = try await cli.run(["up", "--plan", plan])
        #expect(result.code == 2, "\(result.stderr)")
        #expect(result.stderr.contains("the plan is 65536.0 MiB, larger than the 1.0 MiB a plan may be"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot), "nothing may be written for a refused plan")
    }

    @Test func planWithMoreThan2000StepsIsRefusedWithExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let steps = (0...2000).map { "  - {id: s\($0), exec: {run: 'true'}}\n" }.joined()
        let plan = cli.write("many.yaml", "name: many\nsteps:\n" + steps)
        let result = try await cli.run(["validate", "--plan", plan])
        #expect(result.code == 2, "\(result.stderr)")
        #expect(result.stderr.contains("the plan has 2001 steps, more than the 2000 a plan may have"), "\(result.stderr)")
        #expect(result.stderr.hasPrefix("provision: \(plan):3:"), "the error points at the step list: \(result.stderr)")
    }

    @Test func directoryAsPlanSaysItIsADirectoryWithExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["up", "--plan", cli.directory.path])
        #expect(result.code == 2)
        #expect(result.stderr.contains("is a directory, not a plan file"), "\(result.stderr)")
        #expect(!result.stderr.contains("permission denied"))
    }

    @Test func fifoAsPlanSaysItIsAFIFOWithoutBlocking() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let fifo = cli.directory.appendingPathComponent("plan.fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let process = try cli.start(["up", "--plan", fifo])
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.pid, SIGKILL) }
        process.wait()
        #expect(!process.signaled, "provision blocked opening the FIFO")
        #expect(process.exitCode == 2)
        #expect(process.stderr.contains("is a FIFO, not a plan file"), "\(process.stderr)")
        #expect(!process.stderr.contains("permission denied"))
    }

    @Test func devNullAsPlanSaysItIsEmptyWithExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["up", "--plan", "/dev/null"])
        #expect(result.code == 2)
        #expect(result.stderr.contains("the plan is empty: /dev/null is a device, not a plan file"), "\(result.stderr)")
        #expect(!result.stderr.contains("permission denied"))
    }
}
