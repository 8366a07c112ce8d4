import Foundation
import TestSupport
import Testing

/// docs/sequence.md's diagram of `provision up` stays true to the sandbox plan's graph.
@Suite struct SequenceDiagramTests {
    /// The `Note … : step X` names of the mermaid block, in the order they appear.
    static func diagramSteps(_ markdown: String) -> [String] {
        let block = markdown.components(separatedBy: "```mermaid").dropFirst().first?.components(separatedBy: "```").first ?? ""
        return block.split(separator: "\n").compactMap { line in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("Note "), let range = text.range(of: ": step ") else { return nil }
            return String(text[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func theSequenceDiagramNamesEveryStepOfProvisionGraphOnceAndNoStepBeforeWhatItNeeds() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = CLI.repository.appendingPathComponent("plans/sandbox.yaml").path
        let graph = try await cli.run(["graph", "--plan", plan, "--format", "dot"])
        #expect(graph.code == 0, "\(graph.stderr)")
        // dot: `  "id";` per step, `  "a" -> "b";` per dependency.
        var steps: [String] = []
        var edges: [(String, String)] = []
        for line in graph.stdout.split(separator: "\n") {
            let quoted = line.split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            if quoted.count == 1 { steps.append(quoted[0]) } else if quoted.count == 2 { edges.append((quoted[0], quoted[1])) }
        }
        #expect(steps.count > 10, "\(graph.stdout)")

        let markdown = try String(contentsOf: CLI.repository.appendingPathComponent("docs/sequence.md"), encoding: .utf8)
        let drawn = Self.diagramSteps(markdown)
        #expect(Set(drawn) == Set(steps), "in the diagram only: \(Set(drawn).subtracting(steps)); in the graph only: \(Set(steps).subtracting(drawn))")
        #expect(drawn.count == Set(drawn).count, "each step drawn once: \(drawn)")
        for (need, step) in edges {
            guard let before = drawn.firstIndex(of: need), let after = drawn.firstIndex(of: step) else { continue }
            #expect(before < after, "\(step) needs \(need), so its note comes after")
        }
    }
}
