/// `provision plan`: what `up` would do, without doing it.
///
/// The plan walks the graph in order as `up` would, deciding each step with `Executor.decide` (the
/// function `up` uses), from the store alone: a dependency that would run is taken as applied, and
/// its recorded outputs stand for the ones it would produce. It writes nothing to the store and takes
/// no lock, so it may run while an `up` holds it. With `refresh`, the read-only `check` of every step
/// `up` would check first runs live (at most `parallelism` at a time) before the walk, and its answer
/// decides as it would in `up --recheck`.
extension Executor {
    /// Plans a run of `up`; with `refresh`, runs the checks it needs live.
    public func plan(refresh: Bool) async throws -> ChangePlan {
        let records = try store.steps()
        let expansions = PersistedExpansions(store: store)
        guard refresh else { return try walkPlan(records: records, expansions: expansions, refresh: false, checks: nil) }
        // The walk with every check unanswered lists the checks any walk can ask for: answers only
        // ever make more steps run, and a step that runs needs no check.
        var wanted: [(any Step, [StepID: StepOutputs])] = []
        _ = try walkPlan(records: records, expansions: expansions, refresh: true, checks: nil) { step, upstream in wanted.append((step, upstream)) }
        let checks = try await liveChecks(wanted, records: records)
        return try walkPlan(records: records, expansions: expansions, refresh: true, checks: checks)
    }

    /// The store's fan-out items, read once per id.
    final class PersistedExpansions {
        let store: any RunStore
        var cache: [StepID: [String]?] = [:]
        init(store: any RunStore) { self.store = store }
        func items(_ id: StepID) throws -> [String]? {
            if let cached = cache[id] { return cached }
            let items = try store.expansion(id)
            cache[id] = items
            return items
        }
    }

    /// One walk, deciding as `up` (`refresh`: as `up --recheck`); `checks` nil means no live check
    /// ran (then `wantsCheck` hears of every step whose check `up` would run first, with the upstream
    /// outputs it would see).
    func walkPlan(
        records: [StepID: StepRecord], expansions: PersistedExpansions, refresh: Bool, checks: [StepID: CheckResult]?,
        wantsCheck: (any Step, [StepID: StepOutputs]) -> Void = { _, _ in }
    ) throws -> ChangePlan {
        var planned: [PlannedStep] = []
        var outputs: [StepID: StepOutputs] = records.filter { $0.value.state == .succeeded }.mapValues(\.outputs)
        var runs: [StepID: Int] = [:]
        var children: [StepID: [StepID]] = [:]

        // `dependencies`: a fan-out's children wait for what the fan-out waits for, as in `up`.
        func visit(_ step: any Step, dependencies declared: [StepID]) {
            let dependencies = declared.flatMap { children[$0] ?? [$0] }
            let upstream = Dictionary(dependencies.compactMap { id in outputs[id].map { (id, $0) } }, uniquingKeysWith: { $1 })
            let running = dependencies.filter { runs[$0] != nil }
            let scoped = step.upstreamScope(upstream)
            let fingerprint = Self.fingerprint(step, upstream: scoped ?? upstream)
            let record = records[step.id]
            let decision = Self.decide(step, record: record, fingerprint: fingerprint, scoped: scoped != nil, appliedInWalk: !running.isEmpty,
                                       appliedEarlierInRun: false, run: nil, recheck: refresh)
            var reasons: [PlanReason] = []
            if let record, record.state != .succeeded { reasons.append(.lastState(record.state)) } else if record == nil { reasons.append(.new) }
            var action = PlannedAction.run
            var changes = true
            switch decision {
            case .unchanged:
                (action, changes) = (.unchanged, false)
                if !running.isEmpty { reasons.append(.dependencyRunsOutputsDecide(running)) }
            case .recheck, .checkFirst:
                let checked = decision == .recheck
                if !running.isEmpty { reasons.append(.dependencyRunsOutputsDecide(running)) }
                guard step.hasCheck else {
                    reasons.append(.noCheck)
                    break
                }
                guard let checks else {
                    wantsCheck(step, upstream)
                    (action, changes) = (.check, !checked)
                    if checked && !refresh { reasons.append(.checkedEveryRun) }
                    break
                }
                switch checks[step.id] {
                case .satisfied(let found) where checked && found == record?.outputs:
                    (action, changes) = (.unchanged, false)
                    reasons.append(.checkPassed)
                case .satisfied(let found):
                    (action, changes) = (.check, true)
                    reasons.append(checked ? .checkPassedWithNewOutputs : .checkPassed)
                    outputs[step.id] = found
                case .unsatisfied(let why):
                    reasons.append(.checkFailed(why))
                case nil:
                    reasons.append(.checkFailed("its check did not run"))
                }
            case .apply(.dependencyApplied):
                reasons.append(.dependencyRuns(running))
            case .apply(.inputsChanged):
                let current = RecordedInputs(step, upstream: scoped ?? upstream, redact: redactor.redact)
                if let recorded = record?.inputs {
                    let found = recorded.changes(to: current)
                    reasons += found.isEmpty ? [.input(.configuration)] : found.map(PlanReason.input)
                } else {
                    reasons.append(.inputsNotRecorded)
                }
                if !running.isEmpty { reasons.append(.dependencyRuns(running)) }
            }
            var wave = 0
            if action == .run {
                wave = (running.compactMap { runs[$0] }.max() ?? 0) + 1
                runs[step.id] = wave
            }
            planned.append(PlannedStep(id: step.id, action: action, reasons: reasons, changes: changes, wave: wave))
        }

        for id in graph.order {
            switch graph.nodes[id]! {
            case .step(let step):
                visit(step, dependencies: step.dependencies)
            case .fanOut(let fanOut):
                // As `up` expands it: from the source's outputs (recorded), else as persisted.
                let persisted = try expansions.items(fanOut.id)
                let items = outputs[fanOut.source]?[fanOut.output]?.items ?? persisted ?? []
                guard !items.isEmpty else {
                    let wave = (runs[fanOut.source] ?? 0) + 1
                    runs[fanOut.id] = wave
                    planned.append(PlannedStep(id: fanOut.id, action: .run, reasons: [.expandsAfter(fanOut.source)], changes: true, wave: wave))
                    continue
                }
                let made = items.map(fanOut.make)
                children[fanOut.id] = made.map(\.id)
                for child in made {
                    visit(child, dependencies: fanOut.allDependencies)
                    if runs[fanOut.source] != nil { planned[planned.count - 1].reasons.append(.itemsMayChange(fanOut.source)) }
                }
            }
        }
        let planIDs = Set(planned.map(\.id))
        for (id, record) in records.sorted(by: { $0.key < $1.key })
        where !planIDs.contains(id) && [.succeeded, .failed, .cancelled, .running].contains(record.state) {
            planned.append(PlannedStep(id: id, action: .removed, reasons: [.lastState(record.state)], changes: false))
        }
        return ChangePlan(steps: planned.map(redacted), refreshed: refresh)
    }

    /// Runs the checks, at most `parallelism` at a time; a check that throws counts as failed.
    private func liveChecks(_ wanted: [(any Step, [StepID: StepOutputs])], records: [StepID: StepRecord]) async throws -> [StepID: CheckResult] {
        try await withThrowingTaskGroup(of: (StepID, CheckResult).self) { group in
            var results: [StepID: CheckResult] = [:]
            var pending = wanted[...]
            func launch() {
                guard let (step, upstream) = pending.popFirst() else { return }
                var context = context(for: step.id, attempt: 0, item: nil, upstream: upstream, recordEvents: false)
                context.recorded = records[step.id]?.state == .succeeded ? records[step.id]?.outputs : nil
                let redactor = redactor
                group.addTask {
                    do {
                        switch try await step.check(context) {
                        case .satisfied(let outputs): return (step.id, .satisfied(outputs.mapValues { $0.mapStrings(redactor.redact) }))
                        case .unsatisfied(let reason): return (step.id, .unsatisfied(reason))
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        return (step.id, .unsatisfied("check failed: \(error)"))
                    }
                }
            }
            for _ in 0..<parallelism { launch() }
            while let (id, result) = try await group.next() {
                results[id] = result
                launch()
            }
            return results
        }
    }

    /// `step` with every text in its reasons redacted.
    private func redacted(_ step: PlannedStep) -> PlannedStep {
        var step = step
        step.reasons = step.reasons.map { reason in
            switch reason {
            case .checkFailed(let text): .checkFailed(redactor.redact(text))
            case .input(.planKey(let key, let old, let new)): .input(.planKey(key, old: old.map(redactor.redact), new: new.map(redactor.redact)))
            default: reason
            }
        }
        return step
    }
}
