import Foundation
import TestSupport
import Testing

@Suite struct AuditTests {
    @Test func auditRunsChecksLiveAndReportsDriftWithExitCode6() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", """
            name: audit
            steps:
              - id: one
                exec: {run: touch one, check: test -f one}
              - id: two
                exec: {run: touch two, check: test -f two}
              - id: unchecked
                exec: {run: 'true'}
            """)
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
        let clean = try await cli.run(["status", "--audit", "--plan", plan])
        #expect(clean.code == 0)
        try FileManager.default.removeItem(at: cli.directory.appendingPathComponent("two"))
        let drifted = try await cli.run(["status", "--audit", "--json", "--plan", plan])
        #expect(drifted.code == 6)
        let object = try JSONSerialization.jsonObject(with: Data(drifted.stdout.utf8)) as? [String: Any]
        let audit = object?["audit"] as? [String: String]
        #expect(audit?["one"] == "ok")
        #expect(audit?["two"]?.hasPrefix("DRIFT") == true)
        #expect(audit?["unchecked"] == "no check")
        // Auditing changes nothing: the store still says succeeded, and up repairs the drift.
        #expect(try cli.store(plan: "audit").steps()["two"]?.state == .succeeded)
    }
}

@Suite struct AuditUnreachableCheckTests {
    /// A check that cannot run at all (here its working directory is gone, as a dead node's SSH
    /// connection fails) is that step's drift: exit 6 with the whole table, not exit 1.
    @Test func auditReportsACheckThatThrowsAsDriftWithTheRestOfTheTable() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", """
            name: unreachable
            steps:
              - id: node
                exec: {run: mkdir -p node}
              - id: inside
                needs: [node]
                exec: {run: touch here, check: test -f here, dir: node}
              - id: outside
                exec: {run: touch outside, check: test -f outside}
            """)
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
        try FileManager.default.removeItem(at: cli.directory.appendingPathComponent("node"))

        let text = try await cli.run(["status", "--audit", "--plan", plan])
        #expect(text.code == 6, "\(text.stderr)")
        let rows = text.stdout.split(separator: "\n").map(String.init)
        #expect(rows.contains { $0.hasPrefix("inside ") && $0.contains("DRIFT: check failed: cannot start") }, "\(text.stdout)")
        #expect(rows.contains { $0.hasPrefix("outside ") && $0.contains(" ok") }, "\(text.stdout)")
        #expect(rows.contains { $0.hasPrefix("node ") && $0.contains("no check") }, "\(text.stdout)")

        let json = try await cli.run(["status", "--audit", "--json", "--plan", plan])
        #expect(json.code == 6, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let audit = object?["audit"] as? [String: String]
        #expect(audit?["inside"]?.hasPrefix("DRIFT: check failed") == true, "\(json.stdout)")
        #expect(audit?["outside"] == "ok")
        #expect((object?["steps"] as? [Any])?.count == 3)
    }
}
