@testable import App
import Foundation
@testable import PlanLanguage
import Testing

/// The error `PlanLoader` gives for plan `text` (read as plans/t.yaml), nil when it loads; any
/// other error type is recorded as an issue.
func planError(_ text: String) -> PlanError? {
    do {
        _ = try PlanLoader.parse(Data(text.utf8), path: "plans/t.yaml")
        return nil
    } catch let error as PlanError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}
