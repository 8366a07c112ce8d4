import Foundation
import Testing
@testable import Engine

/// `provision up` is SIGKILLed at random moments; `resume` must always converge, applying every
/// step's effect, and applying it twice only when an attempt was cut off mid-apply.
@Suite(.serialized) struct CrashSafetyTests {
    static let stepCount = 30

    static func plan() -> String {
        var text = "name: crash\nparallelism: 4\nsteps:\n"
        for i in 0..<stepCount {
            let id = String(format: "s%02d", i)
            text += "  - id: \(id)\n"
            if i >= 3 { text += "    needs: [\(String(format: "s%02d", i - 3))]\n" }
            text += "    exec:\n"
            text += "      run: sleep 0.02 && echo \(id) >> effects.txt\n"
            text += "      check: grep -qx \(id) effects.txt\n"
        }
        return text
    }

    @Test func resumeAfterSIGKILLAtRandomMomentsAppliesEveryStepAndNoneTwiceUnlessInterrupted() async throws {
        var generator = SystemRandomNumberGenerator()
        var interruptedRuns = 0
        // Kill moments are drawn over the time an uninterrupted run takes on this machine.
        let calibration = CLI()
        let started = ContinuousClock.now
        #expect(try calibration.run(["up", "--plan", calibration.write("plan.yaml", Self.plan())]).code == 0)
        let window = Int(((ContinuousClock.now - started).seconds * 800).rounded())  // the first 80% of a run
        calibration.cleanUp()
        for trial in 0..<20 {
            let cli = CLI()
            defer { cli.cleanUp() }
            let plan = cli.write("plan.yaml", Self.plan())
            let process = try cli.start(["up", "--plan", plan])
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...window, using: &generator)))
            kill(process.pid, SIGKILL)
            process.wait()
            if process.signaled { interruptedRuns += 1 }

            var finished = false
            for _ in 0..<10 {
                let result = try cli.run(["resume", "--plan", plan])
                #expect(!result.signaled, "resume crashed in trial \(trial): \(result.stderr)")
                switch result.code {
                case 0: finished = true
                case 3: _ = try cli.run(["unlock", "--plan", plan])
                case 5:
                    // Killed before the run was recorded, or after it finished.
                    let up = try cli.run(["up", "--plan", plan])
                    finished = up.code == 0
                default: Issue.record("resume exited \(result.code) in trial \(trial): \(result.stderr)")
                }
                if finished { break }
            }
            #expect(finished, "trial \(trial) did not converge")

            let effects = try String(contentsOf: cli.directory.appendingPathComponent("effects.txt"), encoding: .utf8)
            let counts = Dictionary(effects.split(separator: "\n").map { (String($0), 1) }, uniquingKeysWith: +)
            let store = try cli.store(plan: "crash")
            let database = try SQLiteDatabase(path: store.path)
            for i in 0..<Self.stepCount {
                let id = String(format: "s%02d", i)
                let count = counts[id] ?? 0
                #expect(count >= 1, "trial \(trial): \(id) was never applied")
                #expect(count <= 2, "trial \(trial): \(id) applied \(count) times")
                if count == 2 {
                    // Only an attempt cut off by the kill may have been repeated.
                    let interrupted = try database.query(
                        "SELECT COUNT(*) FROM attempts WHERE step_id = ? AND outcome IN ('running', 'cancelled')", [.text(id)])
                    #expect((interrupted.first?[0].int ?? 0) >= 1, "trial \(trial): \(id) applied twice without an interrupted attempt")
                }
            }
            #expect(try store.integrityCheck() == "ok")
            #expect(try store.steps().values.filter { $0.state == .succeeded }.count == Self.stepCount)
        }
        #expect(interruptedRuns >= 10, "most kills should land while provision is running (window \(window) ms)")
    }
}
