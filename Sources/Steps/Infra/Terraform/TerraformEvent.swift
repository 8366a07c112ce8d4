import Foundation
import JSON

/// One line of `terraform apply -json` / `destroy -json`, turned into a line a person reads.
package enum TerraformEvent {
    /// A readable line for the machine-readable `line`, or nil for lines not worth showing.
    static func describe(_ line: String) -> String? {
        guard let object = object(line), let type = object["type"]?.string else { return line.isEmpty ? nil : line }
        let hook = object["hook"]
        let resource = hook?["resource"]?["addr"]?.string ?? ""
        let action = hook?["action"]?.string ?? ""
        switch type {
        case "apply_start":
            return "\(resource): \(action) started"
        case "apply_progress":
            let elapsed = hook?["elapsed_seconds"]?.int ?? 0
            return "\(resource): still \(action == "delete" ? "destroying" : "creating") (\(elapsed)s)"
        case "apply_complete":
            let id = hook?["id_value"]?.string
            let elapsed = hook?["elapsed_seconds"]?.int ?? 0
            return "\(resource): \(action) complete after \(elapsed)s" + (id.map { " [id=\($0)]" } ?? "")
        case "apply_errored":
            return "\(resource): \(action) FAILED"
        case "change_summary":
            return object["@message"]?.string
        case "diagnostic":
            let diagnostic = diagnostic(object)
            return "\(diagnostic.severity): \(diagnostic.text)"
        default:
            return nil
        }
    }

    /// The error diagnostics in a run's output lines, for the failure message.
    static func errors(in lines: [String]) -> [String] {
        lines.compactMap { line in
            guard let object = object(line), object["type"]?.string == "diagnostic" else { return nil }
            let diagnostic = diagnostic(object)
            return diagnostic.severity == "error" ? diagnostic.text : nil
        }
    }

    /// The JSON object on `line`, nil when it holds none.
    private static func object(_ line: String) -> JSONValue? {
        guard let value = JSONValue.parse(line), case .object = value else { return nil }
        return value
    }

    /// A diagnostic's severity and "summary - detail" text.
    private static func diagnostic(_ object: JSONValue) -> (severity: String, text: String) {
        let diagnostic = object["diagnostic"]
        let summary = diagnostic?["summary"]?.string ?? ""
        let detail = diagnostic?["detail"]?.string ?? ""
        return (diagnostic?["severity"]?.string ?? "error", summary + (detail.isEmpty ? "" : " - \(detail)"))
    }
}
