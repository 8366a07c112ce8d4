import Foundation

/// The state machine of one step during `up` (the first column is `Executor.decide`, which
/// `provision plan` shares):
///
/// ```
/// succeeded, same fingerprint, no upstream applied ─► unchanged
///   (a step with an `upstreamScope` ignores "applied": only its share of the outputs counts)
/// succeeded but changed ─────────────────────────────► apply
/// succeeded, unchanged, `up --recheck` ──────────────► check ─ same outputs ─► unchanged
///   (or a step that `checksEveryRun`)
///                                                             ├ other outputs ─► adopted
///                                                             └ unsatisfied ─► apply
/// new / failed / cancelled / running (interrupted) ──► check ─ satisfied ─► adopted
///                                                             └ unsatisfied ─► apply
///   but a dependency applied in this run ────────────► apply (never adopted)
/// apply: markRunning (intent) ─► apply ─ ok ─► markSucceeded (outputs + state, one transaction)
///                                       └ error ─► retry with backoff, or failed
/// ```
///
/// "Applied in this run" counts the whole run, across `resume`: a dependency applied before the
/// run was killed (`appliedInRun`, from the store) counts as much as one applied in this walk, so
/// whether a step is adopted or applied does not depend on when the kill came. A step that already
/// succeeded in this run is not run again for a dependency applied before it.
extension Executor {
    func converge(
        _ step: any Step, item: String?, record: StepRecord?, upstream: GraphWalker.Upstream, appliedInRun: Set<StepID>
    ) async throws -> Outcome {
        let scoped = step.upstreamScope(upstream.outputs)
        let fingerprint = Self.fingerprint(step, upstream: scoped ?? upstream.outputs)
        let inputs = RecordedInputs(step, upstream: scoped ?? upstream.outputs, redact: redactor.redact)
        let decision = Self.decide(
            step, record: record, fingerprint: fingerprint, scoped: scoped != nil, appliedInWalk: upstream.applied,
            appliedEarlierInRun: upstream.outputs.keys.contains(where: appliedInRun.contains), run: run.id, recheck: recheck)
        if decision == .unchanged || decision == .recheck, record?.inputs == nil {
            // Recorded before the store kept inputs by key: the same fingerprint means the same inputs.
            try store.backfillInputs(step.id, inputs: inputs)
        }
        switch decision {
        case .unchanged:
            notify(Event(run: run.id, step: step.id, kind: .stepUnchanged))
            return .unchanged(record?.outputs ?? [:])
        case .recheck:
            if let outcome = try await adoptIfSatisfied(step, item: item, record: record, fingerprint: fingerprint, inputs: inputs,
                                                        upstream: upstream.outputs, recorded: record?.outputs ?? [:]) {
                return outcome
            }
        case .checkFirst:
            if let adopted = try await adoptIfSatisfied(step, item: item, record: record, fingerprint: fingerprint, inputs: inputs,
                                                        upstream: upstream.outputs) {
                return adopted
            }
        case .apply(.dependencyApplied) where record?.state == .running:
            // Its check could pass on what an attempt did before the dependency changed the world.
            context(for: step.id, attempt: 0, item: item, upstream: upstream.outputs)
                .log.write("a dependency was applied in this run: applying this step again, not adopting what the interrupted attempt did")
        case .apply:
            break
        }
        if Task.isCancelled { return try cancelled(step.id, attempt: record?.attempts ?? 0) }
        return try await applyWithRetries(step, item: item, record: record, fingerprint: fingerprint, inputs: inputs, upstream: upstream.outputs)
    }

    /// Runs `check`; records and returns `adopted` when the world is already right, nil when the
    /// step must be applied. For `up --recheck` (`recorded`: a succeeded, unchanged step) a check
    /// satisfied with the recorded outputs is `unchanged`, one with other outputs adopts the live
    /// ones (downstream sees them through its fingerprint), and cancellation is not an apply.
    private func adoptIfSatisfied(
        _ step: any Step, item: String?, record: StepRecord?, fingerprint: String, inputs: RecordedInputs, upstream: [StepID: StepOutputs],
        recorded: StepOutputs? = nil
    ) async throws -> Outcome? {
        var context = context(for: step.id, attempt: 0, item: item, upstream: upstream)
        context.recorded = recorded
        let started = ContinuousClock.now
        do {
            guard case .satisfied(let outputs) = try await step.check(context) else {
                if recorded != nil { context.log.write("recheck: the world no longer matches this step; applying it again") }
                return nil
            }
            let clean = outputs.mapValues { $0.mapStrings(redactor.redact) }
            if let recorded, clean == recorded {
                notify(Event(run: run.id, step: step.id, kind: .stepUnchanged, message: "checked live"))
                return .unchanged(recorded)
            }
            let reason = recorded != nil ? "checked live: outputs changed"
                : record?.state == .running ? "interrupted attempt found already done" : "already satisfied"
            notify(try store.markSucceeded(step.id, run: run.id, fingerprint: fingerprint, inputs: inputs, outputs: clean,
                                           duration: ContinuousClock.now - started, adopted: true, attempt: nil, message: reason))
            return .adopted(clean)
        } catch is CancellationError {
            if recorded != nil { throw CancellationError() }
            return nil
        } catch let error as StoreError {
            throw error
        } catch {
            context.log.write(recorded != nil ? "recheck failed: \(error); applying it again" : "check failed, applying instead: \(error)")
            return nil
        }
    }

    private func applyWithRetries(
        _ step: any Step, item: String?, record: StepRecord?, fingerprint: String, inputs: RecordedInputs, upstream: [StepID: StepOutputs]
    ) async throws -> Outcome {
        // A resumed run keeps counting attempts where the interrupted one stopped.
        let first = (record?.run == run.id ? record?.attempts ?? 0 : 0) + 1
        return try await attempts(
            step, first: first, item: item, upstream: upstream, label: "",
            begin: { attempt in
                notify(try store.markRunning(step.id, run: run.id, attempt: attempt, fingerprint: fingerprint))
            },
            work: { context in try await step.apply(context) },
            succeeded: { attempt, outputs, duration in
                let clean = outputs.mapValues { $0.mapStrings(redactor.redact) }
                notify(try store.markSucceeded(step.id, run: run.id, fingerprint: fingerprint, inputs: inputs, outputs: clean, duration: duration,
                                               adopted: false, attempt: attempt, message: duration.formatted))
                return .applied(clean)
            },
            cancelled: { attempt in try cancelled(step.id, attempt: attempt) })
    }

    private func cancelled(_ id: StepID, attempt: Int) throws -> Outcome {
        let message = "interrupted by cancellation in attempt \(attempt); 'provision resume' runs it again"
        notify(try store.mark(id, run: run.id, state: .cancelled, message: message, attempt: attempt))
        return .cancelled
    }
}

/// Runs `body`, cancelling it and throwing `StepTimedOut` once `limit` has passed.
func withTimeout<T: Sendable>(_ limit: Duration?, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let limit else { return try await body() }
    return try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw StepTimedOut(limit: limit)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
