import Foundation

extension Plan {
    /// The folder the plan file is in; relative paths in the plan are relative to it.
    public var directory: URL { URL(fileURLWithPath: path).deletingLastPathComponent() }

    /// `path` as the plan means it: absolute as is, else relative to the plan's folder.
    public func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path).standardizedFileURL
    }
}
