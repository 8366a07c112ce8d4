import Foundation
import TestSupport
import Testing
@testable import Engine

/// What `--json` prints is what the store keeps.
@Suite struct StoredEventTests {
    @Test func theEventAnAdoptedStepStoresIsByteForByteTheOneJSONPrints() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", """
            name: adopt
            steps:
              - id: done-already
                exec:
                  run: echo applied
                  check: echo "was here"
            """)
        let up = try await cli.run(["up", "--json", "--plan", plan])
        #expect(up.code == 0, "\(up.stderr)")
        let printed = try #require(up.stdout.split(separator: "\n").first { $0.contains("\"kind\":\"step.adopted\"") }, "\(up.stdout)")

        let stored = try #require(try cli.store(plan: "adopt").events(run: nil, step: "done-already", limit: 100).first { $0.kind == .stepAdopted })
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        #expect(String(decoding: try encoder.encode(stored), as: UTF8.self) == String(printed))
        #expect(stored.message == "already satisfied" && stored.seq != nil)
    }
}
