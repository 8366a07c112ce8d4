/// A graph that cannot be run, naming the steps at fault.
public enum GraphError: Error, CustomStringConvertible, Sendable, Equatable {
    case duplicate(StepID)
    case missingDependency(step: StepID, dependency: StepID, suggestion: StepID?)
    case cycle([StepID])
    case badFanOutItems(fanOut: StepID, source: StepID, output: String)

    public var description: String {
        switch self {
        case .duplicate(let id):
            return "step id '\(id)' is used twice; every step needs its own id"
        case .missingDependency(let step, let dependency, let suggestion):
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            return "step '\(step)' depends on '\(dependency)', which is not a step in this plan\(hint)"
        case .cycle(let ids):
            return "steps depend on each other in a cycle: \(ids.map(\.rawValue).joined(separator: " → ")); remove one of these dependencies"
        case .badFanOutItems(let fanOut, let source, let output):
            return "fan-out '\(fanOut)' needs output '\(output)' of step '\(source)' to be a list of strings, and it is not"
        }
    }
}
