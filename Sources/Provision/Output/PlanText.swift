import App
import Engine
import Foundation
import JSON
import Kube

/// The wording of `provision plan` (and of the plan `up` shows on a terminal): a table of steps
/// with what `up` would do and why, the order of a K3s version change, and the same as JSON.
enum PlanText {
    /// The table, the K3s order when the version changes, and a summary line.
    /// - Parameter maxUnavailable: the plan's `k3s.max_unavailable` (the upgrade's waves).
    static func text(_ plan: ChangePlan, name: String, maxUnavailable: Int = 1) -> String {
        var rows = [["STEP", "ACTION", "WHY"]]
        for step in plan.steps {
            let why = step.reasons.map(describe)
            rows.append([step.id.rawValue, label(step.action), why.first ?? ""])
            rows += why.dropFirst().map { ["", "", $0] }
        }
        let widths = (0..<2).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            (row[0].padding(toLength: widths[0], withPad: " ", startingAt: 0) + "  " + row[1].padding(toLength: widths[1], withPad: " ", startingAt: 0)
                + "  " + row[2]).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        if let order = K3sNodeOrder(plan, maxUnavailable: maxUnavailable) {
            lines.append("")
            lines.append("k3s.version \(quoted(order.old)) → \(quoted(order.new)): a rolling upgrade, in this order (k3s.max_unavailable \(maxUnavailable)); "
                         + "each node is cordoned, drained, reinstalled, Ready on the new version and uncordoned before the next")
            for (index, wave) in order.waves.enumerated() {
                lines.append("  \(index + 1). \(wave.map(\.rawValue).joined(separator: ", "))\(wave.count > 1 ? " (at once)" : "")")
            }
        }
        lines.append("")
        lines.append(summary(plan, name: name))
        return lines.joined(separator: "\n")
    }

    /// One line: how many steps get each action, or that nothing would change.
    static func summary(_ plan: ChangePlan, name: String) -> String {
        let counts = PlannedAction.allCases.compactMap { action -> String? in
            let n = plan.steps.filter { $0.action == action }.count
            return n == 0 ? nil : "\(n) \(label(action))"
        }.joined(separator: ", ")
        let refreshed = plan.refreshed ? " (live checks ran)" : " (from the store; --refresh runs the checks live)"
        return plan.hasChanges
            ? "plan '\(name)': 'provision up' would change something: \(counts)\(refreshed)"
            : "plan '\(name)': no changes: \(counts)\(refreshed)"
    }

    static func label(_ action: PlannedAction) -> String {
        switch action {
        case .run: "run"
        case .unchanged: "unchanged"
        case .check: "check first"
        case .removed: "not in plan"
        }
    }

    /// A reason in words (its values already redacted by the engine).
    static func describe(_ reason: PlanReason) -> String {
        switch reason {
        case .new: return "new: never run"
        case .lastState(let state): return "last state: \(state == .running ? "interrupted" : state.rawValue)"
        case .input(.planKey(let key, let old, let new)): return "\(key): \(quoted(old)) → \(quoted(new))"
        case .input(.upstream(let id, let outputs)):
            return outputs.isEmpty ? "\(id) became or stopped being a dependency" : "outputs of \(id) changed: \(outputs.joined(separator: ", "))"
        case .input(.configuration): return "its configuration changed (a part no plan key names: a file it reads, a built-in setting)"
        case .inputsNotRecorded: return "inputs changed (this record predates inputs kept by key): would run"
        case .dependencyRuns(let ids):
            return ids.count == 1 ? "after \(list(ids)) (it runs first; this step takes its outputs)"
                : "after \(list(ids)) (they run first; this step takes their outputs)"
        case .dependencyRunsOutputsDecide(let ids):
            return ids.count == 1 ? "runs only if \(list(ids)) changes this step's share of its outputs (known after it runs)"
                : "runs only if \(list(ids)) change this step's share of their outputs (known after they run)"
        case .expandsAfter(let source): return "its steps are known after \(source) runs"
        case .itemsMayChange(let source): return "its fan-out's items come from \(source), which runs first: steps may be added or removed"
        case .checkFailed(let why): return "live check failed: \(EventText.firstLine(why))"
        case .checkPassed: return "live check passed"
        case .checkPassedWithNewOutputs: return "live check passed with other outputs: 'up' records them"
        case .checkedEveryRun: return "'up' checks it live first (--refresh runs that check now)"
        case .noCheck: return "no check: applied"
        }
    }

    /// A value in quotes, escaped so that it stays on one line and its own quotes are told apart,
    /// and cut at 120 characters (`--json` has it whole).
    private static func quoted(_ value: String?) -> String {
        guard let value else { return "(unset)" }
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped.append(character)
            }
        }
        return "\"" + (escaped.count > 120 ? escaped.prefix(119) + "…" : escaped) + "\""
    }

    private static func list(_ ids: [StepID]) -> String {
        ids.count <= 3 ? ids.map(\.rawValue).joined(separator: ", ") : "\(ids.prefix(2).map(\.rawValue).joined(separator: ", ")) and \(ids.count - 2) more"
    }

    /// The plan as one JSON object.
    static func json(_ plan: ChangePlan, name: String, maxUnavailable: Int = 1) throws -> Data {
        let steps: [JSONValue] = plan.steps.map { step in
            [
                "id": .string(step.id.rawValue), "action": .string(step.action.rawValue), "changes": .bool(step.changes), "wave": .int(step.wave),
                "reasons": .array(step.reasons.map(reasonObject)),
            ]
        }
        var counts: [String: JSONValue] = [:]
        for step in plan.steps { counts[step.action.rawValue] = .int((counts[step.action.rawValue]?.int ?? 0) + 1) }
        var object: [String: JSONValue] = [
            "kind": "plan", "plan": .string(name), "refreshed": .bool(plan.refreshed), "changes": .bool(plan.hasChanges),
            "counts": .object(counts), "steps": .array(steps),
        ]
        if let order = K3sNodeOrder(plan, maxUnavailable: maxUnavailable) { object["k3s_version_order"] = .array(order.waves.map { .strings($0.map(\.rawValue)) }) }
        return JSONValue.object(object).compactData
    }

    private static func reasonObject(_ reason: PlanReason) -> JSONValue {
        var object: [String: JSONValue] = ["text": .string(describe(reason))]
        switch reason {
        case .new: object["kind"] = "new"
        case .lastState(let state): object["kind"] = "last_state"; object["state"] = .string(state.rawValue)
        case .input(.planKey(let key, let old, let new)):
            object["kind"] = "plan_key"; object["key"] = .string(key); object["old"] = .string(old); object["new"] = .string(new)
        case .input(.upstream(let id, let outputs)): object["kind"] = "upstream_outputs"; object["step"] = .string(id.rawValue); object["outputs"] = .strings(outputs)
        case .input(.configuration): object["kind"] = "configuration"
        case .inputsNotRecorded: object["kind"] = "inputs_not_recorded"
        case .dependencyRuns(let ids): object["kind"] = "dependency_runs"; object["steps"] = .strings(ids.map(\.rawValue))
        case .dependencyRunsOutputsDecide(let ids): object["kind"] = "dependency_runs_outputs_decide"; object["steps"] = .strings(ids.map(\.rawValue))
        case .expandsAfter(let source): object["kind"] = "expands_after"; object["step"] = .string(source.rawValue)
        case .itemsMayChange(let source): object["kind"] = "items_may_change"; object["step"] = .string(source.rawValue)
        case .checkFailed(let why): object["kind"] = "check_failed"; object["message"] = .string(why)
        case .checkPassed: object["kind"] = "check_passed"
        case .checkPassedWithNewOutputs: object["kind"] = "check_passed_new_outputs"
        case .checkedEveryRun: object["kind"] = "checked_every_run"
        case .noCheck: object["kind"] = "no_check"
        }
        return .object(object)
    }
}
