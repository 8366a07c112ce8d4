/// Runs the vertices of a graph in dependency order, at most `parallelism` at a time.
///
/// Concurrency contract: the walker's own bookkeeping runs on the calling task only; each step's
/// work runs in a child task of one task group, and its outcome comes back to the caller, so no
/// state is shared between step tasks.
///
/// Failure propagation: a vertex whose dependency did not succeed is not run; it is reported once
/// as `skipped`, naming the first upstream that failed, and the upstream error is not repeated.
/// Independent branches keep running.
///
/// Cancellation: when the calling task is cancelled, nothing new starts; running work sees the
/// cancellation (child processes get SIGINT) and returns `cancelled`; vertices never started stay
/// as they were in the store.
///
/// Fan-out: a `fanOut` vertex is expanded by `expand` once all its dependencies succeeded; the
/// children it returns are scheduled like any vertex, and dependents of the fan-out wait for all of
/// them.
struct GraphWalker: Sendable {
    /// A unit the walker schedules.
    struct Vertex: Sendable {
        enum Kind: Sendable {
            case step(any Step, item: String?)
            case fanOut(FanOut)
        }
        let id: StepID
        let dependencies: [StepID]
        let kind: Kind
    }

    /// What a vertex's work is told about its dependencies.
    struct Upstream: Sendable {
        /// Outputs by step id (each child of a fan-out dependency is listed).
        var outputs: [StepID: StepOutputs] = [:]
        /// Whether any dependency was applied (not just adopted or unchanged) in this walk.
        var applied = false
    }

    let parallelism: Int

    /// Walks `vertices` (in a topological order).
    /// - Parameters:
    ///   - work: runs one step; throwing aborts the walk (used for run-store failures only).
    ///   - skip: records that a step will not run and why.
    ///   - expand: turns a fan-out into its children.
    func walk(
        _ vertices: [Vertex],
        work: @escaping @Sendable (Vertex, Upstream) async throws -> Outcome,
        skip: (Vertex, String) throws -> Void,
        expand: (FanOut, [StepID: Outcome]) throws -> [Vertex]
    ) async throws -> RunSummary {
        var waiting = vertices
        var outcomes: [StepID: Outcome] = [:]
        var children: [StepID: [StepID]] = [:]
        var parentOf: [StepID: StepID] = [:]
        var applied: Set<StepID> = []
        var summary = RunSummary()
        var active = 0

        func record(_ id: StepID, _ outcome: Outcome) {
            outcomes[id] = outcome
            summary.outcomes[id] = outcome
            guard let parent = parentOf[id] else {
                if case .applied = outcome { applied.insert(id) }
                return
            }
            if case .applied = outcome { applied.formUnion([id, parent]) }
            let siblings = children[parent] ?? []
            guard siblings.allSatisfy({ outcomes[$0] != nil }) else { return }
            if let failed = siblings.first(where: { !outcomes[$0]!.isSuccess }) {
                outcomes[parent] = .skipped("'\(failed)' did not succeed")
            } else {
                outcomes[parent] = .unchanged([:])
            }
        }

        func upstream(of vertex: Vertex) -> Upstream {
            var result = Upstream()
            for dependency in vertex.dependencies {
                if applied.contains(dependency) { result.applied = true }
                if let kids = children[dependency] {
                    for kid in kids { result.outputs[kid] = outcomes[kid]?.outputs ?? [:] }
                } else {
                    result.outputs[dependency] = outcomes[dependency]?.outputs ?? [:]
                }
            }
            return result
        }

        return try await withThrowingTaskGroup(of: (StepID, Outcome).self) { group in
            func schedule() throws {
                var index = 0
                while index < waiting.count, !Task.isCancelled {
                    let vertex = waiting[index]
                    if let blocker = vertex.dependencies.first(where: { outcomes[$0].map { !$0.isSuccess } ?? false }) {
                        waiting.remove(at: index)
                        let reason = "not run: upstream '\(blocker)' did not succeed"
                        if case .fanOut = vertex.kind {
                            outcomes[vertex.id] = .skipped(reason)
                        } else {
                            try skip(vertex, reason)
                            record(vertex.id, .skipped(reason))
                        }
                        continue
                    }
                    guard vertex.dependencies.allSatisfy({ outcomes[$0] != nil }) else {
                        index += 1
                        continue
                    }
                    switch vertex.kind {
                    case .fanOut(let fanOut):
                        waiting.remove(at: index)
                        let kids = try expand(fanOut, outcomes)
                        children[fanOut.id] = kids.map(\.id)
                        for kid in kids { parentOf[kid.id] = fanOut.id }
                        if kids.isEmpty { outcomes[fanOut.id] = .unchanged([:]) }
                        waiting.insert(contentsOf: kids, at: index)
                    case .step:
                        guard active < parallelism else { return }
                        waiting.remove(at: index)
                        active += 1
                        let context = upstream(of: vertex)
                        group.addTask { (vertex.id, try await work(vertex, context)) }
                    }
                }
            }

            try schedule()
            while let (id, outcome) = try await group.next() {
                active -= 1
                record(id, outcome)
                try schedule()
            }
            summary.cancelled = Task.isCancelled
            return summary
        }
    }
}
