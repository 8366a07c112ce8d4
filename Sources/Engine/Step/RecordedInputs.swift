import Digest

/// What a step's fingerprint was made of when it last succeeded, kept by key so that
/// `provision plan` can say which input changed, not only that the fingerprint did.
///
/// No secret value is kept: plan keys hold configuration (a secret appears by name), and the
/// executor passes every value through the redactor before it is stored. Upstream outputs are kept
/// as digests (their values live in the dependency's own record).
public struct RecordedInputs: Sendable, Codable, Equatable {
    /// The plan keys the step reads (`k3s.version`, `pipeline.rate`), with their values.
    public var planKeys: [String: String]
    /// A digest of the step's whole `inputs` text: tells a change no listed plan key explains.
    public var configuration: String
    /// A digest of each output of each upstream step the fingerprint covered, by step id and output name.
    public var upstream: [String: [String: String]]

    /// Creates a record directly.
    public init(planKeys: [String: String], configuration: String, upstream: [String: [String: String]]) {
        self.planKeys = planKeys
        self.configuration = configuration
        self.upstream = upstream
    }

    /// The inputs of `step` with `upstream` (its scope of the upstream outputs, as the fingerprint
    /// takes them); `redact` hides secret values in plan keys.
    public init(_ step: any Step, upstream: [StepID: StepOutputs], redact: (String) -> String = { $0 }) {
        planKeys = step.planKeys.mapValues(redact)
        configuration = SHA256.hex(step.inputs)
        self.upstream = Dictionary(uniqueKeysWithValues: upstream.map { id, outputs in
            (id.rawValue, outputs.mapValues { SHA256.hex($0.canonical) })
        })
    }

    /// What differs between these recorded inputs and `current`: changed plan keys (old → new),
    /// upstream outputs that changed, and, when neither explains a changed configuration, that.
    public func changes(to current: RecordedInputs) -> [InputChange] {
        var changes: [InputChange] = []
        for key in Set(planKeys.keys).union(current.planKeys.keys).sorted() where planKeys[key] != current.planKeys[key] {
            changes.append(.planKey(key, old: planKeys[key], new: current.planKeys[key]))
        }
        for id in Set(upstream.keys).union(current.upstream.keys).sorted() {
            let old = upstream[id] ?? [:]
            let new = current.upstream[id] ?? [:]
            let names = Set(old.keys).union(new.keys).sorted().filter { old[$0] != new[$0] }
            if upstream[id] == nil || current.upstream[id] == nil || !names.isEmpty {
                changes.append(.upstream(StepID(id), outputs: names))
            }
        }
        if changes.isEmpty && configuration != current.configuration { changes.append(.configuration) }
        return changes
    }
}

/// One input of a step's fingerprint that differs from what it last succeeded with.
public enum InputChange: Sendable, Equatable {
    /// A plan key's value changed (nil: the key was absent).
    case planKey(String, old: String?, new: String?)
    /// Outputs of an upstream step changed (their names), or the step became or stopped being a dependency.
    case upstream(StepID, outputs: [String])
    /// The step's configuration changed in a part no plan key names (a file it reads, its built-in settings).
    case configuration
}
