import Foundation
import TestSupport

/// What sandbox tests ask of a run: the pipeline section of a plan, and the steps `up --json` applied.
enum SandboxRuns {
    static func pipeline(rate: Int) -> String {
        "rate: \(rate)\ngpus_per_producer: 2\nbatch_size: 200\nbatch_wait_ms: 100\npartitions: 3"
    }

    /// The summary line of `up --json`: step id → applied, unchanged, adopted, ...
    static func stepOutcomes(_ result: CLI.Result) -> [String: String] {
        for line in result.stdout.split(separator: "\n").reversed() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["kind"] as? String == "summary" else { continue }
            return object["steps"] as? [String: String] ?? [:]
        }
        return [:]
    }

    static func applied(_ result: CLI.Result) -> Set<String> {
        Set(stepOutcomes(result).filter { $0.value == "applied" }.keys)
    }
}
