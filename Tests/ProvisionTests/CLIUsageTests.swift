import Foundation
import TestSupport
import Testing
@testable import Engine

/// Wrong arguments exit 2 with a message that says what is wrong; commands with nothing to do say so.
@Suite struct CLIUsageTests {
    static let plan = "name: usage\nsteps:\n  - id: prints\n    exec: {run: echo hello}\n"

    @Test func unknownOptionAndMissingValueExit2NotArgumentParsers64() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let unknown = try await cli.run(["up", "--plna", "plan.yaml"])
        #expect(unknown.code == 2, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("Unknown option '--plna'"), "\(unknown.stderr)")
        // Through env, so that CLI does not append its own --state-dir.
        let missing = try await cli.run([CLI.binary, "status", "--plan"], executable: "/usr/bin/env")
        #expect(missing.code == 2, "\(missing.stderr)")
        #expect(missing.stderr.contains("Missing value for '--plan"), "\(missing.stderr)")
        let help = try await cli.run([CLI.binary, "help", "up"], executable: "/usr/bin/env")
        #expect(help.code == 0)
    }

    @Test(arguments: ["0", "100000", "-1"])
    func parallelismOutsideOneTo256IsRefusedWithExit2(_ value: String) async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        for command in ["up", "resume", "down"] {
            let result = try await cli.run([command, "--plan", plan, "--parallelism=\(value)"])
            #expect(result.code == 2, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("--parallelism must be from 1 to 256, not \(value)"), "\(command): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot), "nothing may run")
        #expect(try await cli.run(["up", "--plan", plan, "--parallelism", "256"]).code == 0)
    }

    @Test func logsOfAStepNotInThePlanSaysUnknownWithDidYouMeanAndExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
        let unknown = try await cli.run(["logs", "prnts", "--plan", plan])
        #expect(unknown.code == 2, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("unknown step 'prnts'"), "\(unknown.stderr)")
        #expect(unknown.stderr.contains("Did you mean 'prints'?"), "\(unknown.stderr)")
        let known = try await cli.run(["logs", "prints", "--plan", plan])
        #expect(known.code == 0)
        #expect(known.stdout.contains("hello"))
    }

    @Test func trustHostWithNothingPinnedIsAUsageErrorWithExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        let result = try await cli.run(["trust-host", "worker-9", "--plan", plan])
        #expect(result.code == 2, "\(result.stderr)")
        #expect(result.stderr.contains("no host key is pinned for 'worker-9'"), "\(result.stderr)")
    }

    @Test func stateDirThatIsAFileIsABadArgumentWithExit2() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        let file = cli.write("not-a-dir", "x")
        for command in ["up", "status", "down"] {
            let result = try await cli.run([CLI.binary, command, "--plan", plan, "--state-dir", file], executable: "/usr/bin/env")
            #expect(result.code == 2, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("\(file) is a file, not a directory"), "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("NSCocoaErrorDomain") && !result.stderr.contains("CocoaError"), "\(command): \(result.stderr)")
        }
    }

    @Test func readOnlyStateDirSaysItCannotBeWrittenWithExit4() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        try FileManager.default.createDirectory(atPath: cli.stateRoot, withIntermediateDirectories: true)
        // A read-only bind mount in a private mount namespace: read-only even for root.
        let script = """
            mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" up --plan "$3" --state-dir "$1"
            """
        let result = try await cli.run(["--mount", "/bin/sh", "-c", script, "sh", cli.stateRoot, CLI.binary, plan], executable: "/usr/bin/unshare")
        #expect(result.code == 4, "\(result.stderr)")
        #expect(result.stderr.contains("the state directory \(cli.stateRoot)/usage cannot be written (Read-only file system)"), "\(result.stderr)")
    }

    @Test func downWithNoStateSaysNothingToTearDownAndCreatesNoRun() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", Self.plan)
        let down = try await cli.run(["down", "--plan", plan])
        #expect(down.code == 0, "\(down.stderr)")
        #expect(down.stderr.contains("nothing to tear down"), "\(down.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot), "down must not create a store")
        let json = try await cli.run(["down", "--json", "--plan", plan])
        #expect(json.code == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["kind"] as? String == "summary")
        #expect((object?["message"] as? String)?.contains("nothing to tear down") == true)
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot))
    }

    @Test func resumeSummarySaysResumeNotUp() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", "name: again\nsteps:\n  - id: flaky\n    exec: {run: test -f fixed}\n")
        let up = try await cli.run(["up", "--plan", plan])
        #expect(up.code == 1)
        #expect(up.stderr.contains("run 1 up: failed"), "\(up.stderr)")
        _ = cli.write("fixed", "")
        let resume = try await cli.run(["resume", "--plan", plan])
        #expect(resume.code == 0, "\(resume.stderr)")
        #expect(resume.stderr.contains("run 1 resume: succeeded"), "\(resume.stderr)")
        #expect(!resume.stderr.contains("run 1 up:"), "\(resume.stderr)")

        _ = try await cli.run(["up", "--plan", plan, "--json"])
        try FileManager.default.removeItem(at: cli.directory.appendingPathComponent("fixed"))
        let plan2 = cli.write("plan.yaml", "name: again\nsteps:\n  - id: flaky\n    exec: {run: test -f fixed && echo v2}\n")
        #expect(try await cli.run(["up", "--plan", plan2]).code == 1)
        _ = cli.write("fixed", "")
        let json = try await cli.run(["resume", "--json", "--plan", plan2])
        #expect(json.code == 0, "\(json.stderr)")
        let summary = json.stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(summary?["kind"] as? String == "summary")
        #expect(summary?["command"] as? String == "resume", "\(json.stdout)")
        #expect(summary?["resumes"] as? String == "up")
    }
}
