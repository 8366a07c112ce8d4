import App
import ArgumentParser
import Engine

struct GraphCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Print the plan's step graph as Graphviz dot or Mermaid.",
        discussion: """
            Fan-outs are shown with the children a run expanded them into, when the store knows them.

              provision graph --plan plans/demo.yaml | dot -Tsvg > graph.svg
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case dot, mermaid
    }

    @OptionGroup var options: GlobalOptions

    @Option(help: "Output format: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: Format = .dot

    func run() async throws {
        try await withExitCodes(json: false) {
            let workspace = try options.workspace()
            let graph = try workspace.plan.graph(secrets: [:])
            let store = workspace.hasStore ? try workspace.openStore() : nil
            let expanded = try graph.expanded { try store?.expansion($0) }
            var nodes: [StepID] = []
            var edges: [(StepID, StepID)] = []
            for entry in expanded.entries {
                let (id, dependencies) = switch entry {
                case .step(let step): (step.id, step.dependencies)
                case .unexpanded(let fanOut): (fanOut.id, fanOut.allDependencies)
                }
                nodes.append(id)
                // A dependency on an expanded fan-out is a dependency on each of its children.
                edges += expanded.resolve(dependencies).map { ($0, id) }
            }
            print(format == .dot ? dot(nodes, edges) : mermaid(nodes, edges))
        }
    }

    private func dot(_ nodes: [StepID], _ edges: [(StepID, StepID)]) -> String {
        var lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
        lines += nodes.map { "  \"\($0)\";" }
        lines += edges.map { "  \"\($0.0)\" -> \"\($0.1)\";" }
        return (lines + ["}"]).joined(separator: "\n")
    }

    private func mermaid(_ nodes: [StepID], _ edges: [(StepID, StepID)]) -> String {
        var index: [StepID: String] = [:]
        var lines = ["graph LR"]
        for (i, id) in nodes.enumerated() {
            index[id] = "s\(i)"
            lines.append("  s\(i)[\"\(id)\"]")
        }
        lines += edges.compactMap { from, to in
            guard let a = index[from], let b = index[to] else { return nil }
            return "  \(a) --> \(b)"
        }
        return lines.joined(separator: "\n")
    }
}
