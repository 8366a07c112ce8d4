import Foundation

/// The run store in one SQLite file (WAL mode, 0600) inside the state directory.
///
/// One connection, serialised by a lock: the executor's parallel steps write small transactions,
/// and SQLite allows one writer anyway.
public final class SQLiteRunStore: RunStore, @unchecked Sendable {
    private let database: SQLiteDatabase
    private let lock = NSLock()
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// The database file.
    public var path: String { database.path }

    /// The file name inside a state directory.
    public static let fileName = "store.sqlite"

    /// Opens (creating and migrating) the store in `directory`, which is created 0700.
    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // Creating the file, switching it to WAL and migrating are serialised between processes by
        // a lock on the directory: two commands started at once on a new state would otherwise race
        // (SQLite answers "database is locked" to a journal-mode change without waiting).
        let directoryFD = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { if directoryFD >= 0 { close(directoryFD) } }
        if directoryFD >= 0 { while flock(directoryFD, LOCK_EX) != 0 && errno == EINTR {} }
        database = try SQLiteDatabase(path: directory.appendingPathComponent(Self.fileName).path)
        encoder.outputFormatting = .sortedKeys
        try StoreSchema.migrate(database)
    }

    @discardableResult
    private func locked<T>(_ body: () throws -> T) throws -> T {
        try lock.withLock(body)
    }

    // MARK: Lock

    public func acquireLock(_ holder: LockHolder) throws {
        try locked {
            try database.transaction {
                if let current = try readLockHolder() {
                    let dir = URL(fileURLWithPath: database.path).deletingLastPathComponent().path
                    if current.isDead { throw LockError.stale(holder: current, stateDirectory: dir) }
                    throw LockError.held(by: current, stateDirectory: dir)
                }
                try database.query(
                    "INSERT INTO lock (id, pid, host, since, command, process_start) VALUES (1, ?, ?, ?, ?, ?)",
                    [.int(Int64(holder.pid)), .text(holder.host), .double(holder.since.timeIntervalSince1970), .text(holder.command),
                     holder.processStart.map(SQLValue.text) ?? .null])
            }
        }
    }

    public func releaseLock(pid: Int32) throws {
        try locked { try database.query("DELETE FROM lock WHERE pid = ? AND host = ?", [.int(Int64(pid)), .text(LockHolder.hostName)]) }
    }

    public func lockHolder() throws -> LockHolder? {
        try locked { try readLockHolder() }
    }

    public func clearLock() throws {
        try locked { try database.query("DELETE FROM lock") }
    }

    private func readLockHolder() throws -> LockHolder? {
        guard let row = try database.query("SELECT pid, host, since, command, process_start FROM lock WHERE id = 1").first else { return nil }
        return LockHolder(pid: Int32(row[0].int ?? 0), host: row[1].text ?? "", since: Date(timeIntervalSince1970: row[2].double ?? 0),
                          command: row[3].text ?? "", processStart: row[4].text)
    }

    // MARK: Runs

    public func beginRun(command: RunCommand, planPath: String, planText: String) throws -> RunRecord {
        try locked {
            let now = Date()
            let id = try database.transaction {
                try database.query("INSERT INTO runs (command, plan_path, plan_text, started_at, status) VALUES (?, ?, ?, ?, 'running')",
                                   [.text(command.rawValue), .text(planPath), .text(planText), .double(now.timeIntervalSince1970)])
                let id = database.lastInsertRowID
                try insertEvents([Event(run: id, kind: .runStarted, message: "\(command.rawValue) \(planPath)", at: now)])
                return id
            }
            return RunRecord(id: id, command: command, planPath: planPath, planText: planText, startedAt: now, finishedAt: nil, status: .running)
        }
    }

    public func resumeRun(_ id: Int64) throws {
        try locked {
            try database.transaction {
                try database.query("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?", [.int(id)])
                try insertEvents([Event(run: id, kind: .runResumed)])
            }
        }
    }

    public func finishRun(_ id: Int64, status: RunStatus) throws {
        try locked {
            try database.transaction {
                try database.query("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                                   [.text(status.rawValue), .double(Date().timeIntervalSince1970), .int(id)])
                try insertEvents([Event(run: id, kind: .runFinished, message: status.rawValue)])
            }
        }
    }

    public func lastRun() throws -> RunRecord? {
        try locked {
            guard let row = try database.query(
                "SELECT id, command, plan_path, plan_text, started_at, finished_at, status FROM runs ORDER BY id DESC LIMIT 1").first
            else { return nil }
            return RunRecord(
                id: row[0].int ?? 0, command: RunCommand(rawValue: row[1].text ?? "") ?? .up, planPath: row[2].text ?? "",
                planText: row[3].text ?? "", startedAt: Date(timeIntervalSince1970: row[4].double ?? 0),
                finishedAt: row[5].double.map(Date.init(timeIntervalSince1970:)), status: RunStatus(rawValue: row[6].text ?? "") ?? .failed)
        }
    }

    // MARK: Steps

    public func steps() throws -> [StepID: StepRecord] {
        try locked {
            let rows = try database.query(
                "SELECT id, state, fingerprint, attempts, run_id, started_at, finished_at, duration_ms, last_error, outputs, inputs FROM steps")
            var result: [StepID: StepRecord] = [:]
            for row in rows {
                let id = StepID(row[0].text ?? "")
                let outputs = row[9].text.flatMap { try? decoder.decode(StepOutputs.self, from: Data($0.utf8)) } ?? [:]
                result[id] = StepRecord(
                    id: id, state: StepState(rawValue: row[1].text ?? "") ?? .pending, fingerprint: row[2].text ?? "",
                    attempts: Int(row[3].int ?? 0), run: row[4].int ?? 0,
                    startedAt: row[5].double.map(Date.init(timeIntervalSince1970:)), finishedAt: row[6].double.map(Date.init(timeIntervalSince1970:)),
                    durationMs: row[7].int.map(Int.init), lastError: row[8].text, outputs: outputs,
                    inputs: row[10].text.flatMap { try? decoder.decode(RecordedInputs.self, from: Data($0.utf8)) })
            }
            return result
        }
    }

    @discardableResult
    public func markRunning(_ step: StepID, run: Int64, attempt: Int, fingerprint: String) throws -> Event {
        try locked {
            let now = Date().timeIntervalSince1970
            return try database.transaction {
                try database.query("""
                    INSERT INTO steps (id, state, fingerprint, attempts, run_id, started_at, finished_at)
                    VALUES (?1, 'running', ?2, ?3, ?4, ?5, NULL)
                    ON CONFLICT(id) DO UPDATE SET state = 'running', fingerprint = ?2, attempts = ?3, run_id = ?4,
                        started_at = ?5, finished_at = NULL
                    """, [.text(step.rawValue), .text(fingerprint), .int(Int64(attempt)), .int(run), .double(now)])
                // An attempt still `running` belongs to a `provision` that was killed (one writer, and
                // a step never runs twice at once): it was interrupted, whatever happens next.
                try database.query("UPDATE attempts SET outcome = 'interrupted' WHERE step_id = ? AND outcome = 'running'", [.text(step.rawValue)])
                try database.query("INSERT INTO attempts (run_id, step_id, attempt, started_at, outcome) VALUES (?, ?, ?, ?, 'running')",
                                   [.int(run), .text(step.rawValue), .int(Int64(attempt)), .double(now)])
                return try insertEvents([Event(run: run, step: step, kind: .stepStarted, attempt: attempt)])[0]
            }
        }
    }

    public func markSucceeded(
        _ step: StepID, run: Int64, fingerprint: String, inputs: RecordedInputs?, outputs: StepOutputs, duration: Duration, adopted: Bool,
        attempt: Int?, message: String
    ) throws -> Event {
        try locked {
            let now = Date().timeIntervalSince1970
            let json = String(decoding: try encoder.encode(outputs), as: UTF8.self)
            let inputsJSON: SQLValue = try inputs.map { .text(String(decoding: try encoder.encode($0), as: UTF8.self)) } ?? .null
            let ms = Int64(duration.seconds * 1000)
            return try database.transaction {
                try database.query("""
                    INSERT INTO steps (id, state, fingerprint, attempts, run_id, started_at, finished_at, duration_ms, last_error, outputs, inputs)
                    VALUES (?1, 'succeeded', ?2, 0, ?3, ?4, ?4, ?5, NULL, ?6, ?7)
                    ON CONFLICT(id) DO UPDATE SET state = 'succeeded', fingerprint = ?2, run_id = ?3, finished_at = ?4,
                        duration_ms = ?5, last_error = NULL, outputs = ?6, inputs = ?7
                    """, [.text(step.rawValue), .text(fingerprint), .int(run), .double(now), .int(ms), .text(json), inputsJSON])
                try database.query("""
                    UPDATE attempts SET finished_at = ?, outcome = ? WHERE run_id = ? AND step_id = ? AND outcome = 'running'
                    """, [.double(now), .text(adopted ? "adopted" : "succeeded"), .int(run), .text(step.rawValue)])
                return try insertEvents([Event(run: run, step: step, kind: adopted ? .stepAdopted : .stepSucceeded, attempt: attempt, message: message)])[0]
            }
        }
    }

    public func backfillInputs(_ step: StepID, inputs: RecordedInputs) throws {
        try locked {
            let json = String(decoding: try encoder.encode(inputs), as: UTF8.self)
            try database.query("UPDATE steps SET inputs = ? WHERE id = ? AND inputs IS NULL", [.text(json), .text(step.rawValue)])
        }
    }

    public func markAttemptFailed(_ step: StepID, run: Int64, attempt: Int, error: String, duration: Duration, final: Bool) throws -> Event {
        try locked {
            let now = Date().timeIntervalSince1970
            return try database.transaction {
                try database.query("UPDATE steps SET state = ?, last_error = ?, finished_at = ?, duration_ms = ? WHERE id = ?",
                                   [.text(final ? "failed" : "running"), .text(error), .double(now),
                                    .int(Int64(duration.seconds * 1000)), .text(step.rawValue)])
                try database.query("""
                    UPDATE attempts SET finished_at = ?, outcome = 'failed', error = ? WHERE run_id = ? AND step_id = ? AND attempt = ?
                    """, [.double(now), .text(error), .int(run), .text(step.rawValue), .int(Int64(attempt))])
                return try insertEvents([Event(run: run, step: step, kind: final ? .stepFailed : .stepRetrying, attempt: attempt, message: error)])[0]
            }
        }
    }

    public func mark(_ step: StepID, run: Int64, state: StepState, message: String, attempt: Int?) throws -> Event {
        let kind: Event.Kind = switch state {
        case .skipped: .stepSkipped
        case .destroyed: .stepTornDown
        default: .stepCancelled
        }
        return try locked {
            return try database.transaction {
                try database.query("""
                    INSERT INTO steps (id, state, fingerprint, attempts, run_id, last_error) VALUES (?1, ?2, '', 0, ?3, ?4)
                    ON CONFLICT(id) DO UPDATE SET state = ?2, run_id = ?3, last_error = ?4
                    """, [.text(step.rawValue), .text(state.rawValue), .int(run), message.isEmpty ? .null : .text(message)])
                try database.query("""
                    UPDATE attempts SET finished_at = ?, outcome = ? WHERE run_id = ? AND step_id = ? AND outcome = 'running'
                    """, [.double(Date().timeIntervalSince1970), .text(state.rawValue), .int(run), .text(step.rawValue)])
                return try insertEvents([Event(run: run, step: step, kind: kind, attempt: attempt, message: message)])[0]
            }
        }
    }

    public func attempts(of step: StepID, run: Int64?) throws -> [AttemptRecord] {
        try locked {
            try database.query("""
                SELECT run_id, attempt, started_at, finished_at, outcome, error FROM attempts
                WHERE step_id = ?1 AND (?2 IS NULL OR run_id = ?2) ORDER BY run_id, attempt
                """, [.text(step.rawValue), run.map(SQLValue.int) ?? .null]).map { row in
                AttemptRecord(run: row[0].int ?? 0, step: step, attempt: Int(row[1].int ?? 0),
                              startedAt: Date(timeIntervalSince1970: row[2].double ?? 0), finishedAt: row[3].double.map(Date.init(timeIntervalSince1970:)),
                              outcome: row[4].text ?? "", error: row[5].text)
            }
        }
    }

    // MARK: Events

    @discardableResult
    public func append(_ events: [Event]) throws -> [Event] {
        guard !events.isEmpty else { return [] }
        return try locked { try database.transaction { try insertEvents(events) } }
    }

    /// Inserts `events`; returns them as a later read returns them (`seq` set, time as stored).
    @discardableResult
    private func insertEvents(_ events: [Event]) throws -> [Event] {
        try events.map { event in
            let at = event.at.timeIntervalSince1970
            try database.query("INSERT INTO events (run_id, at, step_id, kind, attempt, message) VALUES (?, ?, ?, ?, ?, ?)", [
                .int(event.run), .double(at), event.step.map { .text($0.rawValue) } ?? .null,
                .text(event.kind.rawValue), event.attempt.map { .int(Int64($0)) } ?? .null, .text(event.message),
            ])
            var stored = event
            stored.seq = database.lastInsertRowID
            stored.at = Date(timeIntervalSince1970: at)
            return stored
        }
    }

    public func events(run: Int64?, step: StepID?, limit: Int) throws -> [Event] {
        try locked {
            let rows = try database.query("""
                SELECT seq, run_id, at, step_id, kind, attempt, message FROM (
                    SELECT * FROM events WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR step_id = ?2)
                    ORDER BY seq DESC LIMIT ?3) ORDER BY seq
                """, [run.map(SQLValue.int) ?? .null, step.map { .text($0.rawValue) } ?? .null, .int(Int64(limit))])
            return rows.map { row in
                var event = Event(run: row[1].int ?? 0, step: row[3].text.map { StepID($0) }, kind: Event.Kind(rawValue: row[4].text ?? "") ?? .output,
                                  attempt: row[5].int.map(Int.init), message: row[6].text ?? "",
                                  at: Date(timeIntervalSince1970: row[2].double ?? 0))
                event.seq = row[0].int
                return event
            }
        }
    }

    // MARK: Expansions and host keys

    public func saveExpansion(_ fanOut: StepID, items: [String]) throws {
        let json = String(decoding: try encoder.encode(items), as: UTF8.self)
        try locked {
            try database.query("INSERT INTO expansions (fanout_id, items) VALUES (?1, ?2) ON CONFLICT(fanout_id) DO UPDATE SET items = ?2",
                               [.text(fanOut.rawValue), .text(json)])
        }
    }

    public func expansion(_ fanOut: StepID) throws -> [String]? {
        try locked {
            guard let text = try database.query("SELECT items FROM expansions WHERE fanout_id = ?", [.text(fanOut.rawValue)]).first?[0].text
            else { return nil }
            return try decoder.decode([String].self, from: Data(text.utf8))
        }
    }

    public func pinnedHostKey(_ host: String) throws -> String? {
        try locked { try database.query("SELECT fingerprint FROM host_keys WHERE host = ?", [.text(host)]).first?[0].text }
    }

    public func pinHostKey(_ host: String, fingerprint: String) throws {
        try locked {
            try database.query("""
                INSERT INTO host_keys (host, fingerprint, pinned_at) VALUES (?1, ?2, ?3)
                ON CONFLICT(host) DO UPDATE SET fingerprint = ?2, pinned_at = ?3
                """, [.text(host), .text(fingerprint), .double(Date().timeIntervalSince1970)])
        }
    }

    public func forgetHostKey(_ host: String) throws {
        try locked { try database.query("DELETE FROM host_keys WHERE host = ?", [.text(host)]) }
    }

    // MARK: Resources

    public func saveResource(kind: String, key: String, value: String) throws {
        try locked {
            try database.query("""
                INSERT INTO resources (kind, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT(kind, key) DO UPDATE SET value = ?3, updated_at = ?4
                """, [.text(kind), .text(key), .text(value), .double(Date().timeIntervalSince1970)])
        }
    }

    public func resources(kind: String) throws -> [String: String] {
        try locked {
            let rows = try database.query("SELECT key, value FROM resources WHERE kind = ?", [.text(kind)])
            return Dictionary(rows.map { ($0[0].text ?? "", $0[1].text ?? "") }, uniquingKeysWith: { $1 })
        }
    }

    public func removeResource(kind: String, key: String) throws {
        try locked { try database.query("DELETE FROM resources WHERE kind = ?1 AND key = ?2", [.text(kind), .text(key)]) }
    }

    // MARK: Children

    public func stepsApplied(inRun run: Int64) throws -> Set<StepID> {
        try locked {
            Set(try database.query("SELECT DISTINCT step_id FROM attempts WHERE run_id = ? AND outcome = 'succeeded'", [.int(run)])
                .map { StepID($0[0].text ?? "") })
        }
    }

    public func recordChild(_ child: ChildRecord) throws -> ChildRecord {
        try locked {
            try database.query("""
                INSERT INTO children (step_id, run_id, attempt, pid, process_start, host, command, started_at, stop_grace_ms, stop_signal)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(child.step.rawValue), .int(child.run), .int(Int64(child.attempt)), .int(Int64(child.pid)),
                      child.processStart.map(SQLValue.text) ?? .null, .text(child.host), .text(child.command),
                      .double(child.startedAt.timeIntervalSince1970), child.stopGrace.map { .int(Int64($0.seconds * 1000)) } ?? .null,
                      child.stopSignal.map { .int(Int64($0)) } ?? .null])
            var stored = child
            stored.id = database.lastInsertRowID
            return stored
        }
    }

    public func removeChild(id: Int64) throws {
        try locked { try database.query("DELETE FROM children WHERE id = ?", [.int(id)]) }
    }

    public func children() throws -> [ChildRecord] {
        try locked {
            try database.query("""
                SELECT id, step_id, run_id, attempt, pid, process_start, host, command, started_at, stop_grace_ms, stop_signal
                FROM children ORDER BY id
                """)
                .map { row in
                    ChildRecord(id: row[0].int ?? 0, step: StepID(row[1].text ?? ""), run: row[2].int ?? 0, attempt: Int(row[3].int ?? 0),
                                pid: Int32(row[4].int ?? 0), processStart: row[5].text, host: row[6].text ?? "", command: row[7].text ?? "",
                                startedAt: Date(timeIntervalSince1970: row[8].double ?? 0), stopGrace: row[9].int.map { .milliseconds($0) },
                                stopSignal: row[10].int.map { Int32($0) })
                }
        }
    }

    public func integrityCheck() throws -> String {
        try locked { try database.query("PRAGMA integrity_check").map { $0[0].text ?? "" }.joined(separator: "; ") }
    }
}
