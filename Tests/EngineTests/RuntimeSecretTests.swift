import Foundation
import Testing
@testable import Engine

/// A secret a step learns while it runs is hidden from then on.
@Suite struct RuntimeSecretTests {
    /// Reads a join token from "the node", registers it, then logs and returns it.
    struct LearnsAToken: Step {
        let id: StepID = "k3s.server"
        let token: String
        var inputs: String { "learns" }

        func apply(_ context: StepContext) async throws -> StepOutputs {
            context.addSecret(token)
            context.log.write("joined with token \(token)")
            return ["token": .string(token)]
        }
    }

    @Test func aSecretAddedDuringARunIsRedactedFromThatStepsLogEventsAndOutputs() async throws {
        let token = "K10f00ba7::server:learned-at-runtime"
        let harness = try Harness()
        let events = EventLog()
        let summary = try await harness.run([.step(LearnsAToken(token: token))], events: { events.append($0) })
        #expect(summary.status == .succeeded)
        let log = try String(contentsOf: harness.directory.url.appendingPathComponent("logs/k3s.server.log"), encoding: .utf8)
        #expect(log.contains("joined with token ***") && !log.contains(token), "\(log)")
        #expect(try harness.store.steps()["k3s.server"]?.outputs["token"] == .string("***"))
        #expect(!events.all.contains { $0.message.contains(token) })
        #expect(try harness.store.events(run: nil, step: "k3s.server", limit: 100).contains { $0.message == "joined with token ***" })
    }
}

/// Events an observer saw, in order.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [Event] = []
    func append(_ event: Event) { lock.withLock { events.append(event) } }
    var all: [Event] { lock.withLock { events } }
}
