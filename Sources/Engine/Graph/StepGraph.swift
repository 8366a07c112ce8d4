/// The steps of a plan and the order they must run in.
///
/// A graph holds plain steps and fan-outs. A dependency on a fan-out means "on every step it
/// expands into". Construction validates the graph: duplicate ids, dependencies on unknown ids
/// (with a "did you mean") and cycles (named in order) are errors.
public struct StepGraph: Sendable {
    /// A vertex: a step, or a template that expands into steps.
    public enum Node: Sendable {
        case step(any Step)
        case fanOut(FanOut)

        public var id: StepID {
            switch self {
            case .step(let step): step.id
            case .fanOut(let fanOut): fanOut.id
            }
        }

        public var dependencies: [StepID] {
            switch self {
            case .step(let step): step.dependencies
            case .fanOut(let fanOut): fanOut.allDependencies
            }
        }
    }

    /// Vertices by id.
    public private(set) var nodes: [StepID: Node] = [:]
    /// Ids in a stable topological order (dependencies first, ties by declaration order).
    public private(set) var order: [StepID] = []

    /// Builds and validates a graph.
    public init(_ nodes: [Node]) throws {
        var declared: [StepID] = []
        for node in nodes {
            guard self.nodes[node.id] == nil else { throw GraphError.duplicate(node.id) }
            self.nodes[node.id] = node
            declared.append(node.id)
        }
        for node in nodes {
            for dependency in node.dependencies where self.nodes[dependency] == nil {
                throw GraphError.missingDependency(step: node.id, dependency: dependency,
                                                   suggestion: Self.closest(to: dependency, among: declared))
            }
        }
        order = try Self.topologicalOrder(declared, nodes: self.nodes)
    }

    /// The stable topological order of vertices given as ids and dependencies alone (for checking
    /// a plan without building its steps); every dependency must be one of the ids.
    /// - Throws: `GraphError.cycle` naming one cycle in order.
    public static func order(_ vertices: [(id: StepID, dependencies: [StepID])]) throws -> [StepID] {
        let edges = Dictionary(vertices.map { ($0.id, $0.dependencies) }, uniquingKeysWith: { $1 })
        return try topologicalOrder(vertices.map(\.id), dependencies: { edges[$0] ?? [] })
    }

    /// Dependents of each id (reverse edges).
    public var dependents: [StepID: [StepID]] {
        var result: [StepID: [StepID]] = [:]
        for id in order {
            for dependency in nodes[id]!.dependencies { result[dependency, default: []].append(id) }
        }
        return result
    }

    /// Kahn's algorithm over declaration order, so the result is deterministic. On a cycle, walks
    /// the remaining vertices to name one cycle exactly.
    static func topologicalOrder(_ declared: [StepID], nodes: [StepID: Node]) throws -> [StepID] {
        try topologicalOrder(declared) { nodes[$0]!.dependencies }
    }

    private static func topologicalOrder(_ declared: [StepID], dependencies edges: (StepID) -> [StepID]) throws -> [StepID] {
        var remaining = Dictionary(uniqueKeysWithValues: declared.map { ($0, Set(edges($0))) })
        var result: [StepID] = []
        result.reserveCapacity(declared.count)
        var ready = declared.filter { remaining[$0]!.isEmpty }
        var dependents: [StepID: [StepID]] = [:]
        for id in declared { for d in edges(id) { dependents[d, default: []].append(id) } }
        var index = 0
        while index < ready.count {
            let id = ready[index]
            index += 1
            result.append(id)
            for dependent in dependents[id] ?? [] {
                remaining[dependent]!.remove(id)
                if remaining[dependent]!.isEmpty { ready.append(dependent) }
            }
        }
        guard result.count < declared.count else { return result }
        let done = Set(result)
        let start = declared.first { !done.contains($0) }!
        var path: [StepID] = [start]
        var seen: [StepID: Int] = [start: 0]
        var current = start
        while true {
            let next = edges(current).first { !done.contains($0) }!
            if let at = seen[next] { throw GraphError.cycle(Array(path[at...]) + [next]) }
            seen[next] = path.count
            path.append(next)
            current = next
        }
    }

    /// The declared id nearest to `id` by edit distance, when near enough to be a typo.
    public static func closest(to id: StepID, among candidates: [StepID]) -> StepID? {
        EditDistance.suggestion(for: id.rawValue, among: candidates.map(\.rawValue)).map { StepID($0) }
    }
}
