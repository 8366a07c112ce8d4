import App
import Engine

/// The human wording of events and summaries, shared by the live and plain renderers.
enum EventText {
    /// One line for an event worth a line, or nil (output, unchanged steps, starts).
    static func line(_ event: Event) -> String? {
        let step = event.step?.rawValue ?? ""
        let attempt = event.attempt.map { " (attempt \($0))" } ?? ""
        switch event.kind {
        case .stepSucceeded: return "✓ \(step)  \(event.message)"
        case .stepAdopted: return "✓ \(step)  \(event.message)"
        case .stepTornDown: return "✓ \(step)  torn down"
        case .stepKept: return "= \(step)  kept (--keep-infra)"
        case .stepRetrying: return "↻ \(step)\(attempt) failed: \(firstLine(event.message)); retrying"
        case .stepFailed: return "✗ \(step)\(attempt) failed: \(firstLine(event.message))"
        case .stepSkipped: return "- \(step)  \(event.message)"
        case .stepCancelled: return "⨯ \(step)  cancelled"
        case .stepExpanded: return "  \(step) expands to: \(event.message)"
        default: return nil
        }
    }

    static func summary(_ report: RunReport) -> String {
        let s = report.summary
        let applied = s.count { if case .applied = $0 { true } else { false } }
        let adopted = s.count { if case .adopted = $0 { true } else { false } }
        let unchanged = s.count { if case .unchanged = $0 { true } else { false } }
        let skipped = s.count { if case .skipped = $0 { true } else { false } }
        let cancelled = s.count { $0 == .cancelled }
        let kept = s.count { $0 == .kept }
        var text = "run \(report.run.id) \(report.resumed ? "resume" : report.run.command.rawValue)\(report.resumed && report.run.command.tearsDown ? " (\(report.run.command.rawValue))" : ""): \(s.status.rawValue) — "
        if report.run.command.tearsDown {
            text += "\(applied) torn down, \(unchanged) had nothing to tear down, \(s.failures.count) failed, \(skipped) kept"
            if kept > 0 { text += ", \(kept) machine steps kept (--keep-infra)" }
        } else {
            text += "\(applied) applied, \(adopted) already done, \(unchanged) unchanged, \(s.failures.count) failed, \(skipped) skipped"
        }
        if cancelled > 0 { text += ", \(cancelled) cancelled" }
        for (id, message) in s.failures { text += "\n  ✗ \(id): \(firstLine(message))" }
        if s.cancelled {
            text += "\nInterrupted: run 'provision resume' to continue."
        } else if !s.failures.isEmpty {
            text += "\nSee 'provision logs STEP' for a step's output; fix the cause and run 'provision resume'."
        }
        return text
    }

    static func firstLine(_ text: String) -> String {
        String(text.split(separator: "\n", maxSplits: 1).first ?? "")
    }
}
