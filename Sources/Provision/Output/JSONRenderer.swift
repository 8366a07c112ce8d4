import App
import Engine
import Foundation

/// One JSON object per line on stdout: every event as it happens, then a summary.
final class JSONRenderer: RunRenderer, @unchecked Sendable {
    private let lock = NSLock()
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    func start(run: RunRecord, graph: StepGraph, records: [StepID: StepRecord]) {}

    func event(_ event: Event) {
        guard let data = try? encoder.encode(event) else { return }
        write(data)
    }

    func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    func finish(_ report: RunReport) {
        struct Summary: Encodable {
            let kind = "summary"
            let run: Int64
            let command: String
            /// For a resume, the command of the run it continued (`up` or `down`).
            let resumes: String?
            let status: String
            let steps: [String: String]
            let failures: [String: String]
        }
        let steps = report.summary.outcomes.reduce(into: [String: String]()) { result, entry in
            result[entry.key.rawValue] = switch entry.value {
            case .applied: "applied"
            case .adopted: "adopted"
            case .unchanged: "unchanged"
            case .failed: "failed"
            case .skipped: "skipped"
            case .cancelled: "cancelled"
            case .kept: "kept"
            }
        }
        let failures = Dictionary(uniqueKeysWithValues: report.summary.failures.map { ($0.0.rawValue, $0.1) })
        let summary = Summary(run: report.run.id, command: report.resumed ? "resume" : report.run.command.rawValue,
                              resumes: report.resumed ? report.run.command.rawValue : nil, status: report.summary.status.rawValue,
                              steps: steps, failures: failures)
        if let data = try? encoder.encode(summary) { write(data) }
    }

    private func write(_ data: Data) {
        lock.withLock { FileHandle.standardOutput.write(data + Data("\n".utf8)) }
    }
}
