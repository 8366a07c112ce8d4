import Foundation
import TestSupport
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
        #expect(try await calibration.run(["up", "--plan", calibration.write("plan.yaml", Self.plan())]).code == 0)
        var window = Int(((ContinuousClock.now - started).seconds * 800).rounded())  // the first 80% of a run
        calibration.cleanUp()
        // 20 trials, and more (up to 40) until 10 kills have landed while provision ran.
        for trial in 0..<40 where trial < 20 || interruptedRuns < 10 {
            let cli = CLI()
            defer { cli.cleanUp() }
            let plan = cli.write("plan.yaml", Self.plan())
            let process = try cli.start(["up", "--plan", plan])
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...window, using: &generator)))
            kill(process.pid, SIGKILL)
            process.wait()
            if process.signaled {
                interruptedRuns += 1
            } else {
                // The run ended before the kill: runs are faster now than when calibrated (a full
                // test run's load comes and goes), so kill earlier from now on.
                window = max(100, window * 3 / 4)
            }

            var finished = false
            for _ in 0..<10 {
                let result = try await cli.run(["resume", "--plan", plan])
                #expect(!result.signaled, "resume crashed in trial \(trial): \(result.stderr)")
                switch result.code {
                case 0: finished = true
                case 3: _ = try await cli.run(["unlock", "--plan", plan])
                case 5:
                    // Killed before the run was recorded, or after it finished.
                    let up = try await cli.run(["up", "--plan", plan])
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
                        "SELECT COUNT(*) FROM attempts WHERE step_id = ? AND outcome IN ('running', 'interrupted', 'cancelled')", [.text(id)])
                    #expect((interrupted.first?[0].int ?? 0) >= 1, "trial \(trial): \(id) applied twice without an interrupted attempt")
                }
            }
            #expect(try store.integrityCheck() == "ok")
            #expect(try store.steps().values.filter { $0.state == .succeeded }.count == Self.stepCount)
        }
        #expect(interruptedRuns >= 10, "most kills should land while provision is running (window \(window) ms)")
    }

    /// Steps whose commands run for a second: each start and end, with the command's pid, goes to
    /// a ledger (a command stopped by a signal says so before it ends; its traps come first, so a
    /// signal cannot end it between its start and its traps; its end line ignores TERM and INT, which
    /// its `date` inherits: a stop that arrives while it writes that line, to its whole process
    /// group, once killed `date` and left an end without a time). Its stderr goes to a file:
    /// once `provision` is killed nobody reads the pipe, and the shell's "Terminated" would kill it
    /// with SIGPIPE before it could write its end.
    static let ledgerScript = """
        exec 2>>stderr.txt
        what=$1; step=$PROVISION_STEP
        now() { date +%s.%N; }
        trap 'trap "" TERM INT; echo "end $step $what $$ $(now)" >> ledger.txt' EXIT
        trap 'echo "stopped $step $what $$ $(now)" >> ledger.txt; exit 143' TERM INT
        echo "start $step $what $$ $(now)" >> ledger.txt
        case $what in
          run) sleep 3; echo "$step" >> effects.txt ;;
          check) grep -qx "$step" effects.txt 2>/dev/null; status=$?; exit $status ;;
        esac

        """

    static func ledgerPlan() -> String {
        // Two chains of two steps, then one that needs both: three waves of three seconds each (a
        // killed run's command must outlive `unlock` and `resume` starting, which on a full test
        // run's load took over a second in 39 trials of 40).
        let needs = ["a1": [], "b1": [], "a2": ["a1"], "b2": ["b1"], "join": ["a2", "b2"]]
        var text = "name: ledger\nparallelism: 2\nsteps:\n"
        for id in ["a1", "b1", "a2", "b2", "join"] {
            text += "  - id: \(id)\n"
            if let deps = needs[id], !deps.isEmpty { text += "    needs: [\(deps.joined(separator: ", "))]\n" }
            text += "    exec:\n      run: sh step.sh run\n      check: sh step.sh check\n"
        }
        return text
    }

    /// One command's time in the ledger.
    struct Interval {
        let step: String
        let command: String
        let pid: Int32
        let start: Double
        var end: Double?
        var stopped = false
    }

    /// Whether `pid` is a process that has not ended (a zombie has).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    static func intervals(_ ledger: String) -> [Interval] {
        var open: [Int32: Interval] = [:]
        var closed: [Interval] = []
        for line in ledger.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 5, let pid = Int32(fields[3]), let time = Double(fields[4]) else { continue }
            switch fields[0] {
            case "start": open[pid] = Interval(step: fields[1], command: fields[2], pid: pid, start: time)
            case "stopped": open[pid]?.stopped = true
            case "end":
                if var interval = open.removeValue(forKey: pid) {
                    interval.end = time
                    closed.append(interval)
                }
            default: break
            }
        }
        return closed + open.values
    }

    @Test func afterSIGKILLUnlockAndResumeNoStepsCommandEverRunsTwiceAtTheSameTime() async throws {
        var generator = SystemRandomNumberGenerator()
        let calibration = CLI()
        _ = calibration.write("step.sh", Self.ledgerScript)
        let started = ContinuousClock.now
        #expect(try await calibration.run(["up", "--plan", calibration.write("plan.yaml", Self.ledgerPlan())]).code == 0)
        let window = Int(((ContinuousClock.now - started).seconds * 900).rounded())  // the first 90% of a run
        calibration.cleanUp()
        var stoppedLeftovers = 0
        var killsDuringACommand = 0
        // 20 trials, and more (up to 40) until the kills have hit what this tests: on a loaded
        // machine the random kill times land less often inside a command.
        var trials = 0
        for trial in 0..<40 where trial < 20 || killsDuringACommand < 10 || stoppedLeftovers < 5 {
            trials += 1
            let cli = CLI()
            defer { cli.cleanUp() }
            _ = cli.write("step.sh", Self.ledgerScript)
            let plan = cli.write("plan.yaml", Self.ledgerPlan())
            let process = try cli.start(["up", "--plan", plan])
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...window, using: &generator)))
            kill(process.pid, SIGKILL)
            process.wait()
            let ledgerURL = cli.directory.appendingPathComponent("ledger.txt")
            let atKill = Self.intervals((try? String(contentsOf: ledgerURL, encoding: .utf8)) ?? "")
            if atKill.contains(where: { $0.end == nil }) { killsDuringACommand += 1 }

            // unlock is waited for without yielding (it ends within a moment): resume must start
            // while the killed run's commands still run, or there is nothing left for it to stop,
            // and a wake-up on a busy cooperative pool can come seconds late.
            let unlock = try cli.start(["unlock", "--plan", plan])
            unlock.wait()
            #expect(unlock.exitCode == 0, "\(unlock.stderr)")
            var finished = false
            for _ in 0..<5 where !finished {
                let result = try await cli.run(["resume", "--plan", plan])
                switch result.code {
                case 0: finished = true
                case 5: finished = try await cli.run(["up", "--plan", plan]).code == 0  // killed before the run was recorded
                default: Issue.record("resume exited \(result.code) in trial \(trial): \(result.stderr)")
                }
            }
            #expect(finished, "trial \(trial) did not converge")

            let ledger = try String(contentsOf: ledgerURL, encoding: .utf8)
            let all = Self.intervals(ledger)
            stoppedLeftovers += all.filter(\.stopped).count
            for interval in all where interval.end == nil {
                Issue.record("trial \(trial): \(interval.step) \(interval.command) pid \(interval.pid) never ended:\n\(ledger)")
            }
            for (step, intervals) in Dictionary(grouping: all, by: \.step) {
                let ordered = intervals.sorted { $0.start < $1.start }
                for (earlier, later) in zip(ordered, ordered.dropFirst()) {
                    #expect(later.start >= earlier.end ?? .infinity,
                            "trial \(trial): \(step)'s \(later.command) (pid \(later.pid)) started while its \(earlier.command) (pid \(earlier.pid)) still ran:\n\(ledger)")
                }
            }
            let effects = Set(try String(contentsOf: cli.directory.appendingPathComponent("effects.txt"), encoding: .utf8).split(separator: "\n"))
            #expect(effects == ["a1", "b1", "a2", "b2", "join"], "trial \(trial)")
            // Orphans are reparented to a PID 1 that may never reap them: a zombie has ended.
            for interval in all { #expect(!Self.isRunning(interval.pid), "trial \(trial): pid \(interval.pid) still runs") }
        }
        print("ledger trials: \(trials), kills while a command ran: \(killsDuringACommand), leftover commands stopped by resume: \(stoppedLeftovers)")
        // The trials must have hit what they test: kills while a command ran, leftovers stopped.
        #expect(killsDuringACommand >= 10, "most kills should land while a step's command runs (window \(window) ms)")
        #expect(stoppedLeftovers >= 5, "resume should have stopped commands the killed runs left running")
    }
}
