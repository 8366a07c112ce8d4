import App
import ArgumentParser
import Engine
import Foundation
import Verification

/// `provision verify`: the pipeline's end-to-end checks, now, against the recorded cluster.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check now that the pipeline works end to end, and print the table.",
        discussion: """
            The same checks as the 'verify' step of 'provision up': the processor's /health and /ready, the \
            three topics with their partitions, MongoDB counts rising within seconds, every worker's \
            producer seen in /gpu/info, Prometheus scraping the processor and every node, ingest rate above \
            0, no critical alert firing (warnings and error-budget burns are shown and pass), and the end-to-end latency \
            p50/p99 under pipeline.max_latency (5 s; 30 s for the durable sandbox broker). Reads the store and reaches the \
            services; changes nothing and takes no lock. Exit code 1 when a check fails (the table says what \
            was seen and where to look next); --recorded prints the table the last 'up' recorded instead.

            --scale (runtime: k3s) checks the producers' autoscaling instead: it raises the producers' RATE \
            (ConfigMap app/producer-config) by --scale-factor, restarts them, waits for the HPA's desired \
            replicas to rise and that many producers to be ready, restores RATE (always, also on failure or \
            Ctrl-C), and waits for the scale-in, printing a timeline. Each wait has half of --scale-timeout; \
            a failure prints the HPA's conditions and what to check. Changes the cluster for its duration; \
            takes no lock.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Print the table the last run's verify step recorded instead of checking now.")
    var recorded = false

    @Option(help: "How long the checks that need time (first scrapes, first documents, first rates) may take to pass, like 150s or 5m.")
    var timeout: String = "150s"

    @Flag(help: "Check the producers' autoscaling (runtime: k3s): raise their rate, watch the HPA scale out, restore it, watch it scale in.")
    var scale = false

    @Option(help: "With --scale: the bound of the scale-out and scale-in waits together, like 10m or 90s (half each).")
    var scaleTimeout: String = "10m"

    @Option(help: "With --scale: how much the producers' RATE is multiplied by.")
    var scaleFactor: Double = 10

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
            if scale { return try await checkScale(workspace) }
            guard let timeout = Workspace.parseDuration(timeout), timeout > .zero else {
                throw ValidationError("--timeout must be a duration like 150s, 5m or 1m30s, found '\(self.timeout)'")
            }
            let checks = try await Self.checks(workspace, recorded: recorded, timeout: timeout, quiet: options.json)
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let data = try encoder.encode(VerifyOutput(passed: !checks.isEmpty && checks.allSatisfy(\.ok), checks: checks))
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(PipelineVerifier.table(checks))
                for check in checks where !check.ok {
                    print("✘ \(check.name): expected \(check.expected), saw \(check.seen)" + (check.next.map { "; look at: \($0)" } ?? ""))
                }
                for (name, url) in (try? workspace.pipelineURLs()) ?? [] { print("\(name): \(url)") }
            }
            if checks.isEmpty || checks.contains(where: { !$0.ok }) { throw ExitCodes.stepFailed }
        }
    }

    /// The table now (progress lines on stderr unless `quiet`), or the recorded one.
    static func checks(_ workspace: Workspace, recorded: Bool, timeout: Duration, quiet: Bool) async throws -> [PipelineVerifier.Check] {
        do {
            if recorded { return try workspace.recordedVerify() }
            let progress: (@Sendable (String) -> Void)? = quiet ? nil : { @Sendable line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
            return try await workspace.verifyPipeline(timeout: timeout, log: progress)
        } catch let error as PipelineUnavailable {
            throw ValidationError(error.description)
        }
    }

    struct VerifyOutput: Encodable {
        let passed: Bool
        let checks: [PipelineVerifier.Check]
    }
}
