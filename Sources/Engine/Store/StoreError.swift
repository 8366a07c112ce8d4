import CSQLite

/// Why the run store could not be used.
public enum StoreError: Error, CustomStringConvertible, Sendable {
    case cannotOpen(path: String, reason: String)
    case sql(message: String, code: Int32, path: String)
    case newerSchema(path: String, found: Int, supported: Int)
    case noRun(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open the run store \(path): \(reason); check that the state directory exists and is writable"
        case .sql(let message, let code, let path):
            if code == SQLITE_FULL {
                return "the disk holding \(path) is full (\(message)); free space and run 'provision resume': nothing recorded so far is lost"
            }
            if code == SQLITE_CORRUPT || code == SQLITE_NOTADB {
                return "the run store \(path) is damaged (\(message)); move it aside and run 'provision up' to rebuild state from 'check'"
            }
            return "run store \(path): \(message) (sqlite error \(code))"
        case .newerSchema(let path, let found, let supported):
            return "the run store \(path) has schema version \(found), newer than this provisioner's \(supported); use a newer provision binary"
        case .noRun(let what):
            return what
        }
    }
}
