/// The part of the run store a step may use: what it must remember outside its outputs. Steps get
/// this, never the whole `RunStore` (runs, locks and step states are the executor's).
public protocol StepStore: Sendable {
    /// The pinned host key fingerprint for `host`, if any.
    func pinnedHostKey(_ host: String) throws -> String?
    /// Pins (or deliberately replaces) the key fingerprint for `host`.
    func pinHostKey(_ host: String, fingerprint: String) throws
    /// Forgets the pinned key of `host`, so the next contact pins whatever it presents.
    func forgetHostKey(_ host: String) throws

    /// Records a resource a step created outside the steps table (such as which SSH endpoint
    /// serves an instance), replacing an earlier value under the same kind and key.
    func saveResource(kind: String, key: String, value: String) throws
    /// Every recorded resource of `kind`, by key.
    func resources(kind: String) throws -> [String: String]
    /// Forgets one resource.
    func removeResource(kind: String, key: String) throws
}
