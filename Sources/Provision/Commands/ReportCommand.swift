import App
import ArgumentParser
import Foundation
import Verification

/// `provision report`: one self-contained HTML page (or JSON) about a run.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page about a run: timeline, verify table, pipeline charts, SLOs.",
        discussion: """
            The run's steps on a timeline (start, duration, attempts; failures and retries marked; fan-outs \
            grouped) with the critical path, the table its verify step recorded and, for a plan with the \
            pipeline, Prometheus range queries over the run's time range: ingest rate per topic, consumer \
            lag, end-to-end latency p50/p99, dead letters, utilisation per GPU, and each SLO's measured value \
            and remaining error budget. The page makes no request (no script, no CDN); when Prometheus does \
            not answer, the charts say why they are empty. Reads the store; takes no lock.

              provision report                 the last run, to
                                               <state-dir>/<plan>/report-run-N.html
              provision report --run 3 --output r.html
              provision report --until-now     the pipeline from the run's start to now
              provision report --json          the same data as JSON on stdout
            """
    )

    @OptionGroup var options: GlobalOptions

    @Option(help: "The run to report (default: the last one); 'provision status' shows the last run's number.")
    var run: Int64?

    @Option(help: "Where to write the page (default: <state-dir>/<plan name>/report-run-N.html); with --json, the JSON goes there instead of stdout.")
    var output: String?

    @Flag(help: "Extend the charts and SLOs from the run's end to now (the pipeline keeps running after 'up').")
    var untilNow = false

    func validate() throws {
        if let run, run < 1 { throw ValidationError("--run must be a run number, 1 or more (got \(run))") }
    }

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
            let document: ReportDocument
            do {
                document = try await workspace.report(run: run, until: untilNow ? Date() : nil)
            } catch let error as ReportUnavailable {
                throw ValidationError(error.description)
            }
            if options.json {
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.sortedKeys]
                let data = try encoder.encode(document)
                if let output { try Self.write(data, to: URL(fileURLWithPath: output)) } else { print(String(decoding: data, as: UTF8.self)) }
                return
            }
            let file = output.map { URL(fileURLWithPath: $0) }
                ?? workspace.stateDirectory.appendingPathComponent("report-run-\(document.timeline.run).html")
            try Self.write(Data(ReportPage.html(document).utf8), to: file)
            for note in document.notes { FileHandle.standardError.write(Data("provision: note: \(note)\n".utf8)) }
            print(file.path)
        }
    }

    /// Writes `data` readable by its owner only, like every file under the state directory.
    static func write(_ data: Data, to file: URL) throws {
        let path = file.path
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw ValidationError("cannot write the report to \(path): check that its directory exists and is writable, or pass --output FILE")
        }
        defer { try? handle.close() }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: data)
        chmod(path, 0o600)
    }
}
