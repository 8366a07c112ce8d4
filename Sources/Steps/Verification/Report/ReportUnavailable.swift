/// Why `provision report` has nothing to show for the run asked for.
public enum ReportUnavailable: Error, CustomStringConvertible, Sendable {
    /// The plan has never run.
    case noRuns(plan: String)
    /// The store has no run with this id.
    case unknownRun(Int64, plan: String, last: Int64)

    /// What is missing and the command to run next.
    public var description: String {
        switch self {
        case .noRuns(let plan):
            "plan '\(plan)' has no runs yet; start one with 'provision up', then run 'provision report'"
        case .unknownRun(let run, let plan, let last):
            "plan '\(plan)' has no run \(run); its runs are 1 to \(last) ('provision status' shows the last one)"
        }
    }
}
