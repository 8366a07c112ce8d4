import Foundation

/// `provision down`: teardowns in reverse dependency order, recorded as `destroyed`.
///
/// `down --keep-infra` (the run's command is `downKeepingInfra`, so `resume` keeps it too) leaves
/// every `isInfrastructure` step as it is: no teardown, its record untouched (a later `up` finds
/// it unchanged), a `step.kept` event and the outcome `kept`. The other teardowns run with
/// `context.keepsInfrastructure` set.
extension Executor {
    /// Tears down every step that may have changed the world (succeeded, failed, cancelled or
    /// interrupted), dependents before their dependencies. A failed teardown keeps the steps it
    /// depends on standing (they are reported skipped), so nothing is pulled out from under it.
    public func down() async throws -> RunSummary {
        try await stopLeftovers()
        let records = try store.steps()
        let expanded = try graph.expanded(in: store)
        let steps = expanded.steps
        var dependents: [StepID: [StepID]] = [:]
        for step in steps {
            for dependency in expanded.resolve(step.dependencies) {
                dependents[dependency, default: []].append(step.id)
            }
        }
        let vertices = steps.reversed().map { step in
            GraphWalker.Vertex(id: step.id, dependencies: dependents[step.id] ?? [], kind: .step(step, item: nil))
        }
        return try await GraphWalker(parallelism: parallelism).walk(
            vertices,
            work: { vertex, _ in
                guard case .step(let step, _) = vertex.kind else { return .unchanged([:]) }
                let upstream = expanded.resolve(step.dependencies).reduce(into: [StepID: StepOutputs]()) { result, id in
                    result[id] = records[id]?.outputs
                }
                return try await self.tearDown(step, record: records[step.id], upstream: upstream)
            },
            skip: { vertex, reason in
                try store.append([Event(run: run.id, step: vertex.id, kind: .stepSkipped, message: reason)]).forEach(notify)
            },
            expand: { _, _ in [] }
        )
    }

    /// `upstream`: the recorded outputs of the step's dependencies (a teardown may need them, such
    /// as the address of the API that created what it removes).
    private func tearDown(_ step: any Step, record: StepRecord?, upstream: [StepID: StepOutputs]) async throws -> Outcome {
        guard let record, [.succeeded, .failed, .cancelled, .running].contains(record.state) else { return .unchanged([:]) }
        if run.command.keepsInfrastructure && step.isInfrastructure {
            let event = Event(run: run.id, step: step.id, kind: .stepKept, message: "kept: 'down --keep-infra' leaves the machines standing")
            try store.append([event]).forEach(notify)
            return .kept
        }
        guard step.hasTeardown else {
            notify(try store.mark(step.id, run: run.id, state: .destroyed, message: ""))
            return .applied([:])
        }
        return try await attempts(
            step, first: 1, item: nil, upstream: upstream, label: "teardown: ",
            work: { context in
                try await step.teardown(context)
                return [:]
            },
            succeeded: { attempt, _, _ in
                notify(try store.mark(step.id, run: run.id, state: .destroyed, message: "", attempt: attempt))
                return .applied([:])
            },
            cancelled: { _ in .cancelled })
    }
}
