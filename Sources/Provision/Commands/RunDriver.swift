import App
import ArgumentParser
import Engine
import Foundation
import JSON

#if canImport(Glibc)
import Glibc
#endif

/// Runs `up`, `resume` or `down` with signal handling and the right renderer, and maps the
/// outcome to an exit code.
///
/// The first Ctrl-C (or SIGTERM) cancels the run: nothing new starts, running children get
/// SIGINT and are waited for, their steps are recorded as cancelled. A second Ctrl-C kills every
/// child at once and exits; the store stays consistent and `resume` continues either way.
enum RunDriver {
    static func run(_ request: RunRequest, options: GlobalOptions, parallelism: Int?, recheck: Bool = false) async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: request != .up)
            if request.tearsDown, try !workspace.hasRun() {
                let message = "nothing to tear down: plan '\(workspace.plan.name)' has no runs in \(workspace.stateDirectory.path)"
                if options.json {
                    let object: JSONValue = [
                        "kind": "summary", "command": "down", "status": "succeeded", "steps": [:], "failures": [:], "message": .string(message),
                    ]
                    FileHandle.standardOutput.write(object.compactData + Data("\n".utf8))
                } else {
                    FileHandle.standardError.write(Data("provision: \(message)\n".utf8))
                }
                return
            }
            // On a terminal, `up` first shows what it is about to do (as `provision plan` would);
            // piped output stays as it was.
            if request == .up && !options.json && isatty(STDOUT_FILENO) == 1 {
                let plan = try await workspace.plan(refresh: false, processes: ProcessSupervisor(), parallelism: parallelism)
                print(PlanText.text(plan, name: workspace.plan.name, maxUnavailable: workspace.plan.k3s?.maxUnavailable ?? 1) + "\n")
            }
            let renderer: any RunRenderer = options.json ? JSONRenderer() : (isatty(STDERR_FILENO) == 1 ? LiveRenderer(parallelism: parallelism ?? workspace.plan.parallelism ?? 10) as any RunRenderer : PlainRenderer())
            let supervisor = ProcessSupervisor()
            let commandLine = (["provision"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
            let task = Task {
                try await workspace.execute(
                    request, parallelism: parallelism, recheck: recheck, processes: supervisor, commandLine: commandLine,
                    willStart: { run, graph, records in renderer.start(run: run, graph: graph, records: records) },
                    observer: { renderer.event($0) })
            }
            let signals = SignalTrap { count in
                if count == 1 {
                    renderer.note("stopping: waiting for running steps to finish cleanly (Ctrl-C again to stop at once)")
                    task.cancel()
                } else {
                    renderer.note("stopping now: killing running steps; 'provision resume' continues")
                    supervisor.signalAll(SIGKILL)
                    if let store = try? SQLiteRunStore(directory: workspace.stateDirectory) { try? store.releaseLock(pid: getpid()) }
                    exit(ExitCodes.interrupted.rawValue)
                }
            }
            defer { signals.cancel() }
            let report = try await task.value
            renderer.finish(report)
            if report.summary.cancelled { throw ExitCodes.interrupted }
            if report.summary.status == .failed { throw ExitCodes.stepFailed }
        }
    }
}
