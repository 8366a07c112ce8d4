/// Why a state directory (`--state-dir`, or the plan's folder inside it) cannot be used.
public enum StateDirectoryError: Error, CustomStringConvertible, Sendable {
    /// The path, or one of its parents, exists and is not a directory: a wrong argument.
    case notADirectory(path: String, stateRoot: String)
    /// The directory cannot be created or written (read-only file system, permissions, full disk).
    case notWritable(path: String, reason: String)

    /// Whether the command line is at fault (exit 2) rather than the machine (exit 4).
    public var isBadArgument: Bool {
        if case .notADirectory = self { true } else { false }
    }

    public var description: String {
        switch self {
        case .notADirectory(let path, let root):
            return "the state directory \(root) cannot be used: \(path) is a file, not a directory; "
                + "pass --state-dir with a directory (it is created if missing)"
        case .notWritable(let path, let reason):
            return "the state directory \(path) cannot be written (\(reason)); "
                + "make it writable or pass --state-dir with a writable directory"
        }
    }
}
