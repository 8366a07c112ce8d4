import Foundation

/// What the producer's runs sent and what the brokers acknowledged, kept in a JSON file
/// (`--state-file`) so that a reader can compare it with what reached the database:
///
/// ```json
/// {"node": "node-a", "runs": [{"run": "node-a-1764000000000-3f2a", "produced": 1200,
///   "acknowledged": 1200, "failed": 0, "ended": true}]}
/// ```
///
/// `produced` counts messages queued, `acknowledged` successful delivery reports only, `failed`
/// failed delivery reports plus what was still undelivered at exit. `ended` is true once the run
/// stopped and every message it produced has a delivery report (then produced = acknowledged +
/// failed); a run killed without a chance to flush keeps its last written numbers with
/// `ended: false`. Earlier runs found in the file are kept, so a respawned producer adds a run.
/// The file is replaced atomically (a temporary file renamed over it): a reader never sees half of it.
final class ProducerStateFile {
    /// The file's content.
    struct State: Codable, Equatable {
        var node: String
        var runs: [Run]
    }

    /// One run's counts.
    struct Run: Codable, Equatable {
        var run: String
        var produced: Int
        var acknowledged: Int
        var failed: Int
        var ended: Bool
    }

    let path: String
    private var state: State
    private var lastWrite = Date.distantPast
    /// How often `writeIfDue` writes at most.
    let interval: TimeInterval

    /// Reads `path` if it exists, keeping its runs, and adds `run` (written at once, all counts 0).
    /// Throws when the file exists but is not a state file, or cannot be written.
    init(path: String, node: String, run: String, interval: TimeInterval = 0.5) throws {
        self.path = path
        self.interval = interval
        var runs: [Run] = []
        if let data = FileManager.default.contents(atPath: path) {
            do {
                runs = try JSONDecoder().decode(State.self, from: data).runs
            } catch {
                throw ProducerStateError("\(path) exists but is not a producer state file (\(error)); move it away or pass another --state-file")
            }
        }
        state = State(node: node, runs: runs + [Run(run: run, produced: 0, acknowledged: 0, failed: 0, ended: false)])
        try write()
    }

    /// Records the current run's counts and writes the file if `interval` has passed since the last write.
    func writeIfDue(produced: Int, acknowledged: Int, failed: Int) throws {
        guard Date().timeIntervalSince(lastWrite) >= interval else { return }
        try update(produced: produced, acknowledged: acknowledged, failed: failed, ended: false)
    }

    /// Records the current run's counts and writes the file now.
    func update(produced: Int, acknowledged: Int, failed: Int, ended: Bool) throws {
        state.runs[state.runs.count - 1] = Run(run: state.runs[state.runs.count - 1].run, produced: produced,
                                               acknowledged: acknowledged, failed: failed, ended: ended)
        try write()
    }

    private func write() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(state)
        let temporary = "\(path).tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw ProducerStateError("cannot write \(temporary); check that its directory exists and is writable")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ProducerStateError("cannot rename \(temporary) to \(path): \(reason)")
        }
        lastWrite = Date()
    }
}

/// The state file cannot be read or written, with what to do about it.
struct ProducerStateError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
