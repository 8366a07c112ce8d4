import Foundation

/// Appends redacted lines to one step's log file under `state/<plan>/logs/` and forwards them
/// to an observer (the event table).
public final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle?
    private let redactor: Redactor
    private let observer: @Sendable ([String]) -> Void

    /// The log file's path.
    public let path: URL

    /// Opens (creating 0600) the log at `path` for appending.
    public init(path: URL, redactor: Redactor, observer: @escaping @Sendable ([String]) -> Void = { _ in }) {
        self.path = path
        self.redactor = redactor
        self.observer = observer
        if !FileManager.default.fileExists(atPath: path.path) {
            _ = FileManager.default.createFile(atPath: path.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        handle = try? FileHandle(forWritingTo: path)
        _ = try? handle?.seekToEnd()
    }

    deinit { try? handle?.close() }

    /// Writes lines, redacted, each terminated by a newline.
    public func write(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        let clean = lines.map(redactor.redact)
        lock.withLock {
            handle?.write(Data((clean.joined(separator: "\n") + "\n").utf8))
        }
        observer(clean)
    }

    /// Writes one line.
    public func write(_ line: String) { write([line]) }
}
