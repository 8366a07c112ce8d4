import Foundation
import Testing

@Suite struct AuditTests {
    @Test func auditRunsChecksLiveAndReportsDriftWithExitCode6() throws {
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
        #expect(try cli.run(["up", "--plan", plan]).code == 0)
        let clean = try cli.run(["status", "--audit", "--plan", plan])
        #expect(clean.code == 0)
        try FileManager.default.removeItem(at: cli.directory.appendingPathComponent("two"))
        let drifted = try cli.run(["status", "--audit", "--json", "--plan", plan])
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
