import Engine
import Foundation
import Yams

/// A kubeconfig edited structurally (YAML nodes, never string replacement): K3s's one, with its
/// `default` cluster, user and context renamed and its server rewritten, merged into (and removed
/// from) a user's kubeconfig without touching any other entry.
package enum Kubeconfig {
    /// The three lists whose entries are named.
    static let lists = ["clusters", "users", "contexts"]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// K3s's k3s.yaml with `default` renamed to `name` (cluster, user, context and the context's
    /// references) and every cluster's `server` set to `server`; `current-context` is `name`.
    static func rename(_ text: String, to name: String, server: String) throws -> String {
        guard var root = try Yams.compose(yaml: text), var top = root.mapping else { throw Invalid(description: "the kubeconfig is not a YAML mapping") }
        for list in lists {
            guard case .sequence(var entries)? = top[list] else { throw Invalid(description: "the kubeconfig has no '\(list)' list") }
            for index in entries.indices {
                guard var entry = entries[index].mapping else { continue }
                if entry["name"]?.string == "default" { entry["name"] = Node(name) }
                let body = list == "clusters" ? "cluster" : list == "users" ? "user" : "context"
                if var inner = entry[body]?.mapping {
                    if list == "clusters" { inner["server"] = Node(server) }
                    if list == "contexts" {
                        if inner["cluster"]?.string == "default" { inner["cluster"] = Node(name) }
                        if inner["user"]?.string == "default" { inner["user"] = Node(name) }
                    }
                    entry[body] = .mapping(inner)
                }
                entries[index] = .mapping(entry)
            }
            top[list] = .sequence(entries)
        }
        top["current-context"] = Node(name)
        root = .mapping(top)
        return try Yams.serialize(node: root)
    }

    /// `existing` (a kubeconfig's text, "" for none) with `ours`'s entries named `name` added,
    /// replacing only entries of that name; every other entry is kept as it was. The current
    /// context becomes `name` only when there was none.
    static func merge(_ ours: String, named name: String, into existing: String) throws -> String {
        guard let source = try Yams.compose(yaml: ours)?.mapping else { throw Invalid(description: "our kubeconfig is not a YAML mapping") }
        var top = try existingMapping(existing)
        for list in lists {
            let mine = source[list]?.sequence.map { Array($0) } ?? []
            let kept = (top[list]?.sequence.map { Array($0) } ?? []).filter { $0.mapping?["name"]?.string != name }
            top[list] = .sequence(Node.Sequence(kept + mine.filter { $0.mapping?["name"]?.string == name }))
        }
        if top["apiVersion"] == nil { top["apiVersion"] = Node("v1") }
        if top["kind"] == nil { top["kind"] = Node("Config") }
        if (top["current-context"]?.string ?? "").isEmpty { top["current-context"] = Node(name) }
        return try Yams.serialize(node: .mapping(top))
    }

    /// `existing` without the entries named `name`; the current context is dropped if it was ours.
    static func remove(named name: String, from existing: String) throws -> String {
        var top = try existingMapping(existing)
        for list in lists {
            guard let entries = top[list]?.sequence else { continue }
            top[list] = .sequence(Node.Sequence(Array(entries).filter { $0.mapping?["name"]?.string != name }))
        }
        if top["current-context"]?.string == name { top["current-context"] = nil }
        return try Yams.serialize(node: .mapping(top))
    }

    /// Whether `text` has a context `name` whose cluster's server is `server`.
    static func has(_ text: String, context name: String, server: String) -> Bool {
        guard let top = (try? Yams.compose(yaml: text))??.mapping else { return false }
        let context = top["contexts"]?.sequence?.first { $0.mapping?["name"]?.string == name }?.mapping?["context"]?.mapping
        guard let cluster = context?["cluster"]?.string else { return false }
        let entry = top["clusters"]?.sequence?.first { $0.mapping?["name"]?.string == cluster }
        return entry?.mapping?["cluster"]?.mapping?["server"]?.string == server
    }

    private static func existingMapping(_ text: String) throws -> Node.Mapping {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return Node.Mapping([]) }
        guard let top = try Yams.compose(yaml: text)?.mapping else { throw Invalid(description: "the existing kubeconfig is not a YAML mapping") }
        return top
    }

    /// Writes `text` to `url` with mode 0600 (through a temporary file and a rename), creating its folder (0700).
    static func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).provision-\(getpid())")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Invalid(description: "cannot write \(temporary.path)")
        }
        chmod(temporary.path, 0o600)
        guard Glibc.rename(temporary.path, url.path) == 0 else { throw Invalid(description: "cannot replace \(url.path): \(String(cString: strerror(errno)))") }
    }
}
