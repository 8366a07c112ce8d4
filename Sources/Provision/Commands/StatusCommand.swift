import ArgumentParser
import Engine
import Foundation
import Steps

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the run store knows: the last run and every step's state.",
        discussion: "Columns: step, state, attempts in its last run, duration of its last attempt, and the first line of its last error. Reads the store only; it never takes the lock."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try Workspace(planPath: options.plan, stateRoot: options.stateDir)
            guard workspace.hasStore else {
                if options.json {
                    print(#"{"run":null,"steps":[]}"#)
                } else {
                    print("no runs yet for plan '\(workspace.plan.name)' (state: \(workspace.stateDirectory.path)); start one with 'provision up'")
                }
                return
            }
            let store = try workspace.openStore()
            let records = try store.steps()
            let ordered = try Self.order(workspace: workspace, store: store, records: records)
            let run = try store.lastRun()
            let holder = try store.lockHolder()
            if options.json {
                try printJSON(run: run, records: ordered.compactMap { records[$0] }, lock: holder)
            } else {
                printTable(run: run, ids: ordered, records: records, lock: holder)
            }
        }
    }

    /// Plan order (fan-outs expanded from the store), then stored steps the plan no longer has.
    static func order(workspace: Workspace, store: any RunStore, records: [StepID: StepRecord]) throws -> [StepID] {
        let graph = try workspace.plan.graph(secrets: [:])
        var ids: [StepID] = []
        for id in graph.order {
            if case .fanOut = graph.nodes[id]! {
                ids += (try store.expansion(id) ?? []).map { id.child($0) }
            } else {
                ids.append(id)
            }
        }
        let known = Set(ids)
        return ids + records.keys.filter { !known.contains($0) }.sorted()
    }

    private func printTable(run: RunRecord?, ids: [StepID], records: [StepID: StepRecord], lock: LockHolder?) {
        if let run {
            let when = ISO8601DateFormatter().string(from: run.startedAt)
            print("run \(run.id): \(run.command.rawValue) \(run.planPath) started \(when), \(run.status.rawValue)")
        }
        if let lock { print("locked by \(lock)\(lock.isDead ? " — STALE: run 'provision unlock'" : "")") }
        var rows = [["STEP", "STATE", "ATTEMPTS", "DURATION", "LAST ERROR"]]
        for id in ids {
            guard let r = records[id] else {
                rows.append([id.rawValue, "not run", "", "", ""])
                continue
            }
            rows.append([
                id.rawValue, r.state.rawValue, r.attempts == 0 ? "" : String(r.attempts),
                r.durationMs.map { Duration.milliseconds($0).formatted } ?? "",
                String(EventText.firstLine(r.lastError ?? "").prefix(80)),
            ])
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let padded = (0..<4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            print((padded + [row[4]]).joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }

    private func printJSON(run: RunRecord?, records: [StepRecord], lock: LockHolder?) throws {
        struct RunView: Encodable {
            let id: Int64, command: String, plan: String, status: String, startedAt: Date, finishedAt: Date?
        }
        struct Status: Encodable {
            let run: RunView?
            let lock: LockHolder?
            let steps: [StepRecord]
        }
        let view = run.map {
            RunView(id: $0.id, command: $0.command.rawValue, plan: $0.planPath, status: $0.status.rawValue, startedAt: $0.startedAt, finishedAt: $0.finishedAt)
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(Status(run: view, lock: lock, steps: records)), as: UTF8.self))
    }
}

