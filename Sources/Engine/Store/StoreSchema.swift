/// The run store's schema, as numbered migrations tracked in `PRAGMA user_version`.
enum StoreSchema {
    /// Each entry moves the schema one version up; never edit one that has shipped, append instead.
    static let migrations: [String] = [
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, plan_path TEXT NOT NULL, plan_text TEXT NOT NULL,
            started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL);
        CREATE TABLE steps (
            id TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            run_id INTEGER NOT NULL, started_at REAL, finished_at REAL, duration_ms INTEGER, last_error TEXT, outputs TEXT);
        CREATE TABLE attempts (
            run_id INTEGER NOT NULL, step_id TEXT NOT NULL, attempt INTEGER NOT NULL, started_at REAL NOT NULL,
            finished_at REAL, outcome TEXT NOT NULL, error TEXT, PRIMARY KEY (run_id, step_id, attempt));
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, at REAL NOT NULL, step_id TEXT,
            kind TEXT NOT NULL, attempt INTEGER, message TEXT NOT NULL);
        CREATE INDEX events_by_step ON events (step_id, seq);
        CREATE TABLE expansions (fanout_id TEXT PRIMARY KEY, items TEXT NOT NULL);
        CREATE TABLE host_keys (host TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, pinned_at REAL NOT NULL);
        CREATE TABLE lock (
            id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, since REAL NOT NULL,
            command TEXT NOT NULL, process_start TEXT);
        """,
        """
        CREATE TABLE resources (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (kind, key));
        """,
        """
        CREATE TABLE children (
            id INTEGER PRIMARY KEY AUTOINCREMENT, step_id TEXT NOT NULL, run_id INTEGER NOT NULL, attempt INTEGER NOT NULL,
            pid INTEGER NOT NULL, process_start TEXT, host TEXT NOT NULL, command TEXT NOT NULL, started_at REAL NOT NULL,
            stop_grace_ms INTEGER, stop_signal INTEGER);
        """,
        // The inputs a step last succeeded with, by key (JSON of `RecordedInputs`); NULL in
        // records older than this column.
        """
        ALTER TABLE steps ADD COLUMN inputs TEXT;
        """,
    ]

    /// Applies the migrations the file lacks. Each one reads the version inside its own write
    /// transaction, so two processes opening a new store at once never apply the same migration
    /// twice: the second waits for the first and then finds nothing left to do.
    static func migrate(_ database: SQLiteDatabase) throws {
        let found = Int(try database.query("PRAGMA user_version").first?[0].int ?? 0)
        guard found != migrations.count else { return }
        while true {
            let done = try database.transaction { () throws -> Bool in
                let current = Int(try database.query("PRAGMA user_version").first?[0].int ?? 0)
                guard current <= migrations.count else {
                    throw StoreError.newerSchema(path: database.path, found: current, supported: migrations.count)
                }
                guard current < migrations.count else { return true }
                try database.execute(migrations[current])
                try database.execute("PRAGMA user_version = \(current + 1)")
                return false
            }
            if done { return }
        }
    }
}
