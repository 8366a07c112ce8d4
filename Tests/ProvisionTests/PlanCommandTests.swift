import Foundation
import TestSupport
import Testing
@testable import Engine

#if canImport(Glibc)
import Glibc
#endif

/// `provision plan` through the real binary on exec plans: what it names after an edit, its exit
/// codes, that it hides secrets, and that it runs beside an `up` that holds the lock.
@Suite struct PlanCommandTests {
    static let secret = "plan-test-s3cr3t-9d2f"

    static func planText(greeting: String) -> String {
        """
        name: planned
        secrets:
          tok: {env: PLAN_TEST_TOKEN}
        steps:
          - id: base
            exec:
              run: echo base
          - id: greet
            needs: [base]
            exec:
              run: echo "$GREETING"
              env: {GREETING: "\(greeting)"}
              secrets: [tok]
          - id: list
            needs: [base]
            exec:
              run: printf 'a\\nb\\n'
          - id: each
            for_each: {step: list, output: lines}
            exec:
              run: echo {{item}}
          - id: last
            needs: [greet]
            exec:
              run: echo last
        """
    }

    /// The plan's JSON object.
    static func object(_ result: CLI.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)\(result.stderr)")
    }

    static func ids(_ object: [String: Any], action: String) -> [String] {
        (object["steps"] as? [[String: Any]] ?? []).filter { $0["action"] as? String == action }.compactMap { $0["id"] as? String }
    }

    @Test func planAfterEditingOneKeyNamesExactlyTheStepsUpRunsWithTheOldAndNewValueAndExitsByDetailedExitcode() async throws {
        let cli = CLI(environment: ["PLAN_TEST_TOKEN": Self.secret])
        defer { cli.cleanUp() }
        let path = cli.write("plan.yaml", Self.planText(greeting: "hello"))
        let fresh = try await cli.run(["plan", "--plan", path, "--detailed-exitcode"])
        #expect(fresh.code == 2, "a state with no runs: everything would run: \(fresh.stdout)\(fresh.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot + "/planned"), "plan creates no state")
        #expect(try await cli.run(["up", "--plan", path]).code == 0)

        let same = try await cli.run(["plan", "--plan", path, "--detailed-exitcode"])
        #expect(same.code == 0, "\(same.stdout)\(same.stderr)")
        #expect(same.stdout.contains("no changes"))
        #expect(try await cli.run(["plan", "--plan", path]).code == 0)

        _ = cli.write("plan.yaml", Self.planText(greeting: "bye"))
        let edited = try await cli.run(["plan", "--plan", path, "--json", "--detailed-exitcode"])
        #expect(edited.code == 2, "\(edited.stderr)")
        let object = try Self.object(edited)
        #expect(object["changes"] as? Bool == true)
        #expect(Self.ids(object, action: "run") == ["greet", "last"])
        #expect(Set(Self.ids(object, action: "unchanged")) == ["base", "list", "each/a", "each/b"])
        let greet = (object["steps"] as? [[String: Any]])?.first { $0["id"] as? String == "greet" }
        let reason = (greet?["reasons"] as? [[String: Any]])?.first
        #expect(reason?["kind"] as? String == "plan_key")
        #expect(reason?["key"] as? String == "steps.greet.exec.env.GREETING")
        #expect(reason?["old"] as? String == "hello" && reason?["new"] as? String == "bye")
        let text = try await cli.run(["plan", "--plan", path])
        #expect(text.code == 0, "without --detailed-exitcode a plan with changes exits 0")
        #expect(text.stdout.contains(#"steps.greet.exec.env.GREETING: "hello" → "bye""#), "\(text.stdout)")

        let up = try await cli.run(["up", "--plan", path, "--json"])
        let summary = up.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { $0["kind"] as? String == "summary" }
        let applied = (summary?["steps"] as? [String: String] ?? [:]).filter { $0.value == "applied" }.keys
        #expect(Set(applied) == ["greet", "last"], "up applies exactly what plan named: \(up.stdout)")
        #expect(try await cli.run(["plan", "--plan", path, "--detailed-exitcode"]).code == 0)

        // A value that holds the secret is shown redacted, as every other output.
        _ = cli.write("plan.yaml", Self.planText(greeting: "token \(Self.secret)"))
        let leaking = try await cli.run(["plan", "--plan", path])
        let json = try await cli.run(["plan", "--plan", path, "--json"])
        #expect(leaking.stdout.contains(#""bye" → "token ***""#), "\(leaking.stdout)")
        for output in [leaking.stdout, leaking.stderr, json.stdout, json.stderr] { #expect(!output.contains(Self.secret)) }

        // Any error is 1 with --detailed-exitcode (2 means "changes"), its usual code without.
        _ = cli.write("plan.yaml", "name: planned\nsteps: [")
        #expect(try await cli.run(["plan", "--plan", path, "--detailed-exitcode"]).code == 1)
        #expect(try await cli.run(["plan", "--plan", path]).code == 2)
    }

    @Test func upOnATerminalPrintsThePlanFirstAndPipedOutputHasNone() async throws {
        let cli = CLI(environment: ["PLAN_TEST_TOKEN": Self.secret])
        defer { cli.cleanUp() }
        let path = cli.write("plan.yaml", Self.planText(greeting: "hello"))
        let piped = try await cli.run(["up", "--plan", path])
        #expect(piped.code == 0 && !piped.stdout.contains("ACTION"), "\(piped.stdout)")
        _ = cli.write("plan.yaml", Self.planText(greeting: "bye"))
        // `script` gives the command a terminal and copies what it prints.
        let command = [CLI.binary, "up", "--plan", path, "--state-dir", cli.stateRoot].map { "'\($0)'" }.joined(separator: " ")
        let terminal = try await cli.run(["-qec", command, "/dev/null"], executable: "/usr/bin/script")
        #expect(terminal.code == 0, "\(terminal.stdout)\(terminal.stderr)")
        let table = try #require(terminal.stdout.range(of: "STEP"), "\(terminal.stdout)")
        #expect(terminal.stdout.contains(#"steps.greet.exec.env.GREETING: "hello" → "bye""#))
        let greeted = try #require(terminal.stdout.range(of: "greet", range: table.upperBound..<terminal.stdout.endIndex))
        #expect(terminal.stdout.range(of: "✓ greet")?.lowerBound ?? terminal.stdout.startIndex > greeted.lowerBound,
                "the plan comes before the run: \(terminal.stdout)")
        #expect(!terminal.stdout.contains(Self.secret))
    }

    @Test func upRunsToTheEndWhilePlanRefreshIsInProgress() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let path = cli.write("plan.yaml", """
            name: checking
            steps:
              - id: slow
                exec:
                  run: "true"
                  check: if [ -f done ]; then touch checking; while [ ! -f release ]; do sleep 0.05; done; fi; test -f done
              - id: after
                needs: [slow]
                exec:
                  run: touch done
            """)
        #expect(try await cli.run(["up", "--plan", path]).code == 0)
        let plan = try cli.start(["plan", "--refresh", "--plan", path, "--detailed-exitcode"])
        defer { if plan.isRunning { kill(plan.pid, SIGKILL); plan.wait() } }
        try await waitUntil { FileManager.default.fileExists(atPath: cli.directory.appendingPathComponent("checking").path) }

        let up = try await cli.run(["up", "--plan", path])
        #expect(up.code == 0, "up is not held back by a plan in progress: \(up.stderr)")
        #expect(plan.isRunning, "the plan's check was still running")
        _ = cli.write("release", "")
        try await plan.finish()
        #expect(plan.exitCode == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("live check passed"))
    }

    @Test func planTakesNoLockAndRunsWhileUpHoldsIt() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let path = cli.write("plan.yaml", """
            name: busy
            steps:
              - id: first
                exec:
                  run: echo first
              - id: wait
                needs: [first]
                exec:
                  run: while [ ! -f release ]; do sleep 0.05; done
            """)
        let up = try cli.start(["up", "--plan", path])
        defer { if up.isRunning { kill(up.pid, SIGKILL); up.wait() } }
        try await waitUntil { (try? cli.store(plan: "busy").steps()["wait"]?.state) == .running }
        let holder = try #require(try cli.store(plan: "busy").lockHolder())
        #expect(holder.pid == up.pid)

        let started = ContinuousClock.now
        let plan = try await cli.run(["plan", "--plan", path, "--json", "--detailed-exitcode"])
        // Not waiting for the lock: `up` holds it until told to stop, so a waiting plan would never end.
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(plan.code == 2, "the step up is running is not done yet: \(plan.stdout)\(plan.stderr)")
        let object = try Self.object(plan)
        #expect(Self.ids(object, action: "unchanged") == ["first"])
        #expect(Self.ids(object, action: "run") == ["wait"])
        #expect(try cli.store(plan: "busy").lockHolder() == holder, "plan neither took nor touched the lock")

        _ = cli.write("release", "")
        try await up.finish()
        #expect(up.exitCode == 0, "the up beside it finished: \(up.stderr)")
        #expect(try await cli.run(["plan", "--plan", path, "--detailed-exitcode"]).code == 0)
    }
}
