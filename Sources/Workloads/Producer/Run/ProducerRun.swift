import Foundation
import JSON

/// One start of the producer process, named so that what it sent can be told apart from what
/// another start (a respawn, another node) sent: every event carries the run and its sequence
/// number within it.
struct ProducerRun {
    /// `<node>-<start epoch ms>-<4 random hex>`, unique per process start.
    let id: String

    init(node: String, started: Date = Date()) {
        let milliseconds = Int64((started.timeIntervalSince1970 * 1000).rounded(.down))
        id = "\(node)-\(milliseconds)-\(String(format: "%04x", UInt16.random(in: 0...UInt16.max)))"
    }

    /// `event`, a JSON object this program built, with `producer_run` and `event_seq` added as its
    /// last fields; the processor stores them unchanged with the rest of the payload.
    func stamp(_ event: String, sequence: Int) -> String {
        guard event.hasSuffix("}") else { return event }
        return "\(event.dropLast()),\"producer_run\":\(Self.quoted(id)),\"event_seq\":\(sequence)}"
    }

    /// `text` as a JSON string literal (a node name may hold any character).
    private static func quoted(_ text: String) -> String {
        String(decoding: JSONValue.string(text).compactData, as: UTF8.self)
    }
}
