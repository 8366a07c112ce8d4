/// One idempotent unit of work in a step graph.
///
/// The executor calls `check` (read-only: is the world already as this step wants it?) before it
/// applies a step that is new, failed or was interrupted, and `apply` to make it so. `apply` must be
/// safe to repeat: execution is at-least-once, because a process can die after the effect and
/// before the store records it.
public protocol Step: Sendable {
    /// Stable identifier, unique in the graph.
    var id: StepID { get }
    /// Steps (or fan-outs) that must succeed before this one runs.
    var dependencies: [StepID] { get }
    /// A canonical description of this step's configuration; with upstream outputs it makes the
    /// fingerprint that decides whether a succeeded step must run again.
    var inputs: String { get }
    /// The plan keys `inputs` is made of (`k3s.version`, `steps.configure.exec.run`), with their
    /// values and never a secret value: what `provision plan` names when the fingerprint changed.
    /// Empty (the default) lets it say only that the step's configuration changed.
    var planKeys: [String: String] { get }
    /// Attempts, backoff and per-attempt timeout.
    var retry: RetryPolicy { get }
    /// Whether `check` can tell that the step is done; `status --audit` only audits such steps.
    var hasCheck: Bool { get }
    /// Whether `teardown` does anything; `provision down` only visits steps that have one.
    var hasTeardown: Bool { get }
    /// Whether this step makes the machines themselves, or what they stand on (the key they
    /// trust, the cloud, the instances, their readiness). `provision down --keep-infra` leaves
    /// such a step standing: its teardown is not run and it is not marked destroyed, so the next
    /// `up` finds it as it was; every other step is torn down with `context.keepsInfrastructure` set.
    var isInfrastructure: Bool { get }
    /// Whether every `up` runs this step's check even when it succeeded and nothing changed, as
    /// `up --recheck` does for all steps: for steps whose check is cheap and whose world drifts on
    /// its own (a service that stopped). A failing check applies the step again.
    var checksEveryRun: Bool { get }

    /// The part of the upstream outputs this step depends on. `nil` (the default) means all of it,
    /// and the step runs again whenever a dependency was applied; a step that returns its share
    /// (one node's entry of a node map, say) runs again only when that share changes.
    func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]?

    /// Reports whether the world is already as this step wants it. Must not change anything.
    func check(_ context: StepContext) async throws -> CheckResult
    /// Makes the world as this step wants it and returns the outputs for downstream steps.
    func apply(_ context: StepContext) async throws -> StepOutputs
    /// Undoes what `apply` did; safe to repeat. Under `down --keep-infra`
    /// (`context.keepsInfrastructure`) the machines stay, so a step that leaves its traces on them
    /// (software installed on a node) removes them there.
    func teardown(_ context: StepContext) async throws
}

extension Step {
    public var dependencies: [StepID] { [] }
    public var planKeys: [String: String] { [:] }
    public var retry: RetryPolicy { RetryPolicy() }
    public var hasCheck: Bool { false }
    public var hasTeardown: Bool { false }
    public var isInfrastructure: Bool { false }
    public var checksEveryRun: Bool { false }

    public func upstreamScope(_ upstream: [StepID: StepOutputs]) -> [StepID: StepOutputs]? { nil }

    public func check(_ context: StepContext) async throws -> CheckResult {
        .unsatisfied("this step has no check")
    }

    public func teardown(_ context: StepContext) async throws {}
}
