import App
import ArgumentParser
import Foundation
import Verification

#if canImport(Glibc)
import Glibc
#endif

extension VerifyCommand {
    /// `verify --scale`: runs the autoscaling check, printing its timeline as it goes (stdout), or
    /// the report as JSON at the end; exit 1 when it fails, 130 when Ctrl-C stopped it.
    func checkScale(_ workspace: Workspace) async throws {
        guard !recorded else { throw ValidationError("--scale checks now; it has no recorded table (leave out --recorded)") }
        guard let timeout = Workspace.parseDuration(scaleTimeout), timeout > .zero else {
            throw ValidationError("--scale-timeout must be a duration like 10m, 90s or 1m30s, found '\(scaleTimeout)'")
        }
        guard scaleFactor > 1 else { throw ValidationError("--scale-factor must be more than 1 to raise the rate, found \(scaleFactor)") }
        let json = options.json
        let task = Task {
            do {
                return try await workspace.verifyScale(factor: scaleFactor, timeout: timeout) { event in
                    if !json { print(event.line) }
                }
            } catch let error as PipelineUnavailable {
                throw ValidationError(error.description)
            }
        }
        let signals = SignalTrap { count in
            if count == 1 {
                FileHandle.standardError.write(Data("stopping: restoring the producers' rate (Ctrl-C again to stop at once and leave it raised)\n".utf8))
                task.cancel()
            } else {
                FileHandle.standardError.write(Data("stopped: the producers' RATE may still be raised; run 'provision verify --scale' again or restore it by hand\n".utf8))
                Glibc.exit(ExitCodes.interrupted.rawValue)
            }
        }
        defer { signals.cancel() }
        let report = try await task.value
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
        if let error = report.error {
            FileHandle.standardError.write(Data("✘ verify --scale: \(error)\n".utf8))
        }
        if report.passed { return }
        throw task.isCancelled ? ExitCodes.interrupted : ExitCodes.stepFailed
    }
}
