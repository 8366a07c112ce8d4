import Foundation

/// Where and as whom to open an SSH session.
public struct SSHEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// What people call the machine (`worker-2`); used in messages.
    public var name: String
    /// Address or host name.
    public var host: String
    /// TCP port.
    public var port: Int
    /// Login user.
    public var user: String
    /// Private key file (ed25519, OpenSSH format, mode 0600).
    public var identityFile: String
    /// The key its host key is pinned under in the run store; defaults to `host:port`.
    public var pinKey: String
    /// A bastion to reach it through (ProxyJump): `host` is then resolved and connected to by
    /// the bastion, so it may be a private address. Only the first entry is used.
    public var proxyJump: [SSHEndpoint] = []

    /// Creates an endpoint.
    public init(name: String, host: String, port: Int = 22, user: String, identityFile: String, pinKey: String? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.user = user
        self.identityFile = identityFile
        self.pinKey = pinKey ?? "\(host):\(port)"
    }

    public var description: String {
        "\(name) (\(user)@\(host):\(port)\(proxyJump.first.map { " via \($0.host):\($0.port)" } ?? ""))"
    }
}
