import Foundation
import TestSupport
import Testing

@Suite struct SecretRedactionTests {
    @Test func secretNeverAppearsInLogsEventsErrorsOutputsOrStatusJSON() async throws {
        let secret = "K10-sup3r-s3cret-t0ken-value"
        let cli = CLI(environment: ["CLUSTER_TOKEN": secret])
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", """
            name: secrets
            secrets:
              token: {env: CLUSTER_TOKEN}
            steps:
              - id: prints
                exec:
                  run: echo "joining with $TOKEN"; echo "stderr $TOKEN" >&2
                  secrets: [token]
              - id: fails
                exec:
                  run: echo "bad token $TOKEN" >&2; exit 1
                  check: echo "check sees $TOKEN"; echo "check err $TOKEN" >&2; exit 1
                  secrets: [token]
            """)
        let up = try await cli.run(["up", "--json", "--plan", plan])
        #expect(up.code == 1)
        let status = try await cli.run(["status", "--json", "--plan", plan])
        #expect(status.code == 0)
        let log = try await cli.run(["logs", "prints", "--plan", plan])
        // `plan --refresh` runs the failed step's check, whose output holds the secret.
        let planned = try await cli.run(["plan", "--refresh", "--plan", plan])
        let plannedJSON = try await cli.run(["plan", "--refresh", "--json", "--plan", plan])
        #expect(planned.code == 0 && plannedJSON.code == 0, "\(planned.stderr)")
        #expect(planned.stdout.contains("live check failed"), "\(planned.stdout)")

        for (name, text) in [("up --json", up.stdout), ("up stderr", up.stderr), ("status --json", status.stdout), ("logs", log.stdout),
                             ("plan --refresh", planned.stdout + planned.stderr), ("plan --refresh --json", plannedJSON.stdout + plannedJSON.stderr)] {
            #expect(!text.contains(secret), "secret leaked in \(name)")
        }
        #expect(log.stdout.contains("joining with ***"))
        #expect(log.stdout.contains("stderr ***"))
        #expect(status.stdout.contains("bad token ***"), "the redacted error is still useful")
        #expect(up.stdout.contains("\"kind\":\"output\""), "--json streams output events")

        // Nothing on disk either: the store (and its WAL) and every log.
        let files = FileManager.default.enumerator(atPath: cli.stateRoot)!.compactMap { $0 as? String }
        #expect(files.contains { $0.hasSuffix("store.sqlite") })
        for file in files {
            let data = FileManager.default.contents(atPath: cli.stateRoot + "/" + file) ?? Data()
            #expect(data.range(of: Data(secret.utf8)) == nil, "secret leaked in \(file)")
        }
    }
}
