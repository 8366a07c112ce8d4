import Engine

/// Trust on first use: the first key a host presents is pinned in the run store; any later
/// difference is a hard error that names both fingerprints.
public struct HostKeyPins: Sendable {
    let store: any StepStore

    /// Pins in `store`.
    public init(store: any StepStore) {
        self.store = store
    }

    /// Accepts `fingerprint` for `endpoint` if it matches the pin, or pins it on first contact.
    /// - Throws: `SSHError.hostKeyChanged` when a different key is pinned.
    public func verify(_ endpoint: SSHEndpoint, fingerprint: String) throws {
        if let pinned = try store.pinnedHostKey(endpoint.pinKey) {
            guard pinned == fingerprint else {
                throw SSHError.hostKeyChanged(endpoint: endpoint.description, pinKey: endpoint.pinKey, pinned: pinned, presented: fingerprint)
            }
            return
        }
        try store.pinHostKey(endpoint.pinKey, fingerprint: fingerprint)
    }
}
