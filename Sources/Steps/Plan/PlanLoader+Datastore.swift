import Yams

extension PlanLoader {
    /// Refuses a `--datastore-endpoint` in `k3s.extra_args` that carries a password
    /// (`postgres://user:secret@host/db`, `mysql://user:secret@tcp(host)/db`, `?password=`): extra
    /// arguments reach `INSTALL_K3S_EXEC`, hence the K3s unit's command line (readable by every user
    /// of the node, and in `ps`), and the step's recorded inputs.
    static func checkDatastoreEndpoint(_ args: [String], at node: Node, reader: PlanReader) throws {
        // Every item is a flag (the loader refuses bare values), so the endpoint is always `--datastore-endpoint=VALUE`.
        for arg in args where arg.hasPrefix("--datastore-endpoint=") {
            guard hasCredentials(String(arg.dropFirst("--datastore-endpoint=".count))) else { continue }
            throw reader.error(at: node, "k3s.extra_args gives --datastore-endpoint with a password in it, which would be on the K3s service's command line",
                               hint: "write the endpoint without the password: K3s reads K3S_DATASTORE_ENDPOINT from its service's env file (mode 0600), "
                                   + "or authenticate with --datastore-cafile/--datastore-certfile/--datastore-keyfile (files on the node)")
        }
    }

    /// Whether a datastore endpoint has a `user:password@` part or a `password=` parameter.
    static func hasCredentials(_ endpoint: String) -> Bool {
        if endpoint.lowercased().contains("password=") { return true }
        let afterScheme = endpoint.range(of: "://").map { String(endpoint[$0.upperBound...]) } ?? endpoint
        let authority = afterScheme.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? afterScheme
        guard let at = authority.lastIndex(of: "@") else { return false }
        return authority[..<at].contains(":")
    }
}
