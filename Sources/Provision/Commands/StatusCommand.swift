import App
import ArgumentParser
import Engine
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the run store knows: the last run and every step's state.",
        discussion: """
            Columns: step, state, attempts in its last run, duration of its last attempt, and the first line \
            of its last error. Reads the store only; it never takes the lock.

            With --audit, every step's check also runs live (read-only) and an AUDIT column says whether the \
            world still matches: 'ok', 'DRIFT: reason', or 'no check'. Exit code 6 when anything drifted, or \
            when the last run failed, was cancelled or was killed (its unfinished work is drift too).
            """
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Run every step's check live and report drift.")
    var audit = false

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
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
            let findings = audit ? try await workspace.audit(processes: ProcessSupervisor()) : nil
            if options.json {
                try printJSON(run: run, records: ordered.compactMap { records[$0] }, lock: holder, findings: findings)
            } else {
                printTable(run: run, ids: ordered, records: records, lock: holder, findings: findings)
            }
            if findings?.values.contains(where: { if case .drifted = $0 { true } else { false } }) == true {
                throw ExitCodes.drift
            }
            // Checks that pass now do not make a failed run converged: what it did not finish is not audited.
            // A run still "running" with no lock holder was killed.
            if audit, let run, run.status == .failed || run.status == .cancelled || (run.status == .running && holder == nil) {
                FileHandle.standardError.write(Data("the last run (\(run.id), \(run.command.rawValue)) \(run.status == .running ? "was killed" : run.status.rawValue): run 'provision resume' to finish it, or 'provision up'\n".utf8))
                throw ExitCodes.drift
            }
        }
    }

    /// Plan order (fan-outs expanded from the store), then stored steps the plan no longer has.
    static func order(workspace: Workspace, store: any RunStore, records: [StepID: StepRecord]) throws -> [StepID] {
        let ids = try workspace.plan.graph(secrets: [:]).expanded(in: store).ids
        let known = Set(ids)
        return ids + records.keys.filter { !known.contains($0) }.sorted()
    }

    static func describe(_ finding: AuditFinding) -> String {
        switch finding {
        case .inPlace: "ok"
        case .drifted(let reason): "DRIFT: \(reason)"
        case .unchecked: "no check"
        case .notApplied: "not applied"
        }
    }

    private func printTable(run: RunRecord?, ids: [StepID], records: [StepID: StepRecord], lock: LockHolder?, findings: [StepID: AuditFinding]?) {
        if let run {
            let when = ISO8601DateFormatter().string(from: run.startedAt)
            print("run \(run.id): \(run.command.rawValue) \(run.planPath) started \(when), \(run.status.rawValue)")
        }
        if let lock { print("locked by \(lock)\(lock.isDead ? " — STALE: run 'provision unlock'" : "")") }
        let inits = ids.compactMap { id -> String? in
            guard id.rawValue.hasPrefix("node.ready/"), case .string(let initSystem)? = records[id]?.outputs["init"] else { return nil }
            return "\(id.rawValue.dropFirst("node.ready/".count)) (\(initSystem))"
        }
        if !inits.isEmpty { print("nodes: \(inits.joined(separator: ", "))") }
        var rows = [["STEP", "STATE", "ATTEMPTS", "DURATION", findings == nil ? "" : "AUDIT", "LAST ERROR"]]
        for id in ids {
            let audit = findings?[id].map(Self.describe) ?? ""
            guard let r = records[id] else {
                rows.append([id.rawValue, "not run", "", "", audit, ""])
                continue
            }
            rows.append([
                id.rawValue, r.state.rawValue, r.attempts == 0 ? "" : String(r.attempts),
                r.durationMs.map { Duration.milliseconds($0).formatted } ?? "", audit,
                String(EventText.firstLine(r.lastError ?? "").prefix(80)),
            ])
        }
        let columns = findings == nil ? [0, 1, 2, 3, 5] : [0, 1, 2, 3, 4, 5]
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let padded = columns.dropLast().map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            print((padded + [row[5]]).joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }

    private func printJSON(run: RunRecord?, records: [StepRecord], lock: LockHolder?, findings: [StepID: AuditFinding]?) throws {
        struct RunView: Encodable {
            let id: Int64, command: String, plan: String, status: String, startedAt: Date, finishedAt: Date?
        }
        struct Status: Encodable {
            let run: RunView?
            let lock: LockHolder?
            let steps: [StepRecord]
            let audit: [String: String]?
        }
        let view = run.map {
            RunView(id: $0.id, command: $0.command.rawValue, plan: $0.planPath, status: $0.status.rawValue, startedAt: $0.startedAt, finishedAt: $0.finishedAt)
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        print(String(decoding: try encoder.encode(Status(run: view, lock: lock, steps: records,
                                                                                        audit: findings.map { f in Dictionary(uniqueKeysWithValues: f.map { ($0.key.rawValue, Self.describe($0.value)) }) })), as: UTF8.self))
    }
}

