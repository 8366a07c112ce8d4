/// A graph's concrete steps: every fan-out replaced by the children its persisted items make.
/// The one answer to "which step ids does this graph have now", used by the executor, teardown,
/// `status` and `graph`.
public struct ExpandedSteps: Sendable {
    /// The vertices in graph order: a plain step, a fan-out's children in item order, or a fan-out
    /// never expanded (or expanded to nothing), which has no steps yet.
    public enum Entry: Sendable {
        case step(any Step)
        case unexpanded(FanOut)
    }

    /// Every entry in graph order.
    public let entries: [Entry]
    /// The child ids of each expanded fan-out.
    public let children: [StepID: [StepID]]

    /// The concrete steps, in order (a fan-out never expanded contributes nothing).
    public var steps: [any Step] {
        entries.compactMap { if case .step(let step) = $0 { step } else { nil } }
    }

    /// The ids of the concrete steps, in order.
    public var ids: [StepID] { steps.map(\.id) }

    /// `ids` with every expanded fan-out replaced by its children: a dependency on a fan-out is a
    /// dependency on each child.
    public func resolve(_ ids: [StepID]) -> [StepID] {
        ids.flatMap { children[$0] ?? [$0] }
    }
}

extension StepGraph {
    /// The graph's concrete steps, fan-outs expanded from `items` (the persisted expansion of a
    /// fan-out, nil when it never ran: `RunStore.expansion`).
    public func expanded(_ items: (StepID) throws -> [String]?) rethrows -> ExpandedSteps {
        var entries: [ExpandedSteps.Entry] = []
        var children: [StepID: [StepID]] = [:]
        for id in order {
            switch nodes[id]! {
            case .step(let step):
                entries.append(.step(step))
            case .fanOut(let fanOut):
                let made = try (items(id) ?? []).map(fanOut.make)
                if made.isEmpty {
                    entries.append(.unexpanded(fanOut))
                } else {
                    entries += made.map { .step($0) }
                    children[id] = made.map(\.id)
                }
            }
        }
        return ExpandedSteps(entries: entries, children: children)
    }

    /// The graph's concrete steps, fan-outs expanded as `store` persisted them.
    public func expanded(in store: any RunStore) throws -> ExpandedSteps {
        try expanded { try store.expansion($0) }
    }
}
