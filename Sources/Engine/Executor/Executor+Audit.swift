import Foundation

/// What a live `check` says about a step the store believes is done.
public enum AuditFinding: Sendable, Equatable {
    /// The check agrees with the store.
    case inPlace
    /// The store says succeeded, the check says the world changed.
    case drifted(String)
    /// The step has no check, so it cannot be audited.
    case unchecked
    /// The store does not record it as succeeded; nothing to compare.
    case notApplied(StepState?)
}

extension Executor {
    /// Runs every step's read-only `check`, at most `parallelism` at a time, and compares it with the
    /// store. Writes nothing to the store; check output still goes to the step logs. A check that
    /// throws (its host cannot be reached) is reported as drift of that step; the others still run.
    public func audit() async throws -> [StepID: AuditFinding] {
        let records = try store.steps()
        let steps = try expandedSteps()
        return try await withThrowingTaskGroup(of: (StepID, AuditFinding).self) { group in
            var findings: [StepID: AuditFinding] = [:]
            var pending = steps[...]
            func launch() {
                guard let step = pending.popFirst() else { return }
                let record = records[step.id]
                guard record?.state == .succeeded else {
                    group.addTask { (step.id, .notApplied(record?.state)) }
                    return
                }
                guard step.hasCheck else {
                    group.addTask { (step.id, .unchecked) }
                    return
                }
                // As a run sees them: a fan-out dependency stands for each of its children.
                let upstream = Dictionary(step.dependencies.flatMap { id -> [(StepID, StepOutputs)] in
                    if let items = try? store.expansion(id) { return items.compactMap { item in records[id.child(item)].map { (id.child(item), $0.outputs) } } }
                    return records[id].map { [(id, $0.outputs)] } ?? []
                }, uniquingKeysWith: { $1 })
                let context = context(for: step.id, attempt: 0, item: nil, upstream: upstream, recordEvents: false)
                group.addTask {
                    // A check that cannot run (a node that does not answer) says the step's effect
                    // cannot be confirmed: that is drift of this step, not a reason to stop the audit.
                    do {
                        switch try await step.check(context) {
                        case .satisfied: return (step.id, .inPlace)
                        case .unsatisfied(let reason): return (step.id, .drifted(reason))
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        return (step.id, .drifted("check failed: \(context.redactor.redact(String(describing: error)))"))
                    }
                }
            }
            for _ in 0..<parallelism { launch() }
            while let (id, finding) = try await group.next() {
                findings[id] = finding
                launch()
            }
            return findings
        }
    }
}
