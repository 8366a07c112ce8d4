import Foundation

/// One line of `terraform apply -json` / `destroy -json`, turned into a line a person reads.
enum TerraformEvent {
    /// A readable line for the machine-readable `line`, or nil for lines not worth showing.
    static func describe(_ line: String) -> String? {
        guard let object = object(line), let type = object["type"] as? String else { return line.isEmpty ? nil : line }
        let hook = object["hook"] as? [String: Any]
        let resource = (hook?["resource"] as? [String: Any])?["addr"] as? String ?? ""
        let action = hook?["action"] as? String ?? ""
        switch type {
        case "apply_start":
            return "\(resource): \(action) started"
        case "apply_progress":
            let elapsed = hook?["elapsed_seconds"] as? Int ?? 0
            return "\(resource): still \(action == "delete" ? "destroying" : "creating") (\(elapsed)s)"
        case "apply_complete":
            let id = hook?["id_value"] as? String
            let elapsed = hook?["elapsed_seconds"] as? Int ?? 0
            return "\(resource): \(action) complete after \(elapsed)s" + (id.map { " [id=\($0)]" } ?? "")
        case "apply_errored":
            return "\(resource): \(action) FAILED"
        case "change_summary":
            return object["@message"] as? String
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
            guard let object = object(line), object["type"] as? String == "diagnostic" else { return nil }
            let diagnostic = diagnostic(object)
            return diagnostic.severity == "error" ? diagnostic.text : nil
        }
    }

    private static func object(_ line: String) -> [String: Any]? {
        line.data(using: .utf8).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    /// A diagnostic's severity and "summary - detail" text.
    private static func diagnostic(_ object: [String: Any]) -> (severity: String, text: String) {
        let diagnostic = object["diagnostic"] as? [String: Any]
        let summary = diagnostic?["summary"] as? String ?? ""
        let detail = diagnostic?["detail"] as? String ?? ""
        return (diagnostic?["severity"] as? String ?? "error", summary + (detail.isEmpty ? "" : " - \(detail)"))
    }
}
