import Digest
import Foundation
import PlanLanguage

/// A node as a runtime sees it: its name, whether it is the control plane, and the address its
/// services listen on and are reached at (from the cluster inventory, never assumed loopback).
public struct RuntimeNode: Sendable, Equatable, Hashable {
    public var name: String
    public var address: String
    public var isControlPlane: Bool

    public init(name: String, address: String, isControlPlane: Bool) {
        self.name = name
        self.address = address
        self.isControlPlane = isControlPlane
    }
}

/// How to tell that a started service serves.
public enum HealthProbe: Sendable, Equatable {
    /// A TCP port accepts connections.
    case tcp(host: String, port: Int)
    /// An HTTP GET of `path` on `host`:`port` answers 2xx or 3xx.
    case http(host: String, port: Int, path: String)
    /// Running under the service manager is all there is to check (a producer serves nothing).
    case running
}

/// A file a service reads on its node (configuration, rules).
public struct RemoteFile: Sendable, Equatable {
    public var path: String
    public var contents: String
    public var mode: Int32 = 0o644

    public init(path: String, contents: String, mode: Int32 = 0o644) {
        self.path = path
        self.contents = contents
        self.mode = mode
    }
}

/// A service placed on its node: the unit the service manager runs, the files it reads, how its
/// health is probed, and an idempotent command run once it serves (creating topics, say).
public struct PlacedService: Sendable, Equatable {
    public var unit: ServiceUnit
    public var node: RuntimeNode
    public var files: [RemoteFile] = []
    public var health: HealthProbe
    public var afterStart: String?
    /// An idempotent command run on the node before the unit is started or restarted (the
    /// broker's bucket), never by the service manager's own respawns.
    public var beforeStart: String?
    /// A read-only command that succeeds when what `afterStart` makes exists (the topics): a run
    /// killed between the start and the after-start command leaves a unit that is healthy but not ready.
    public var ready: String?
    /// What else, when changed, must restart the service (the digest of the build it runs).
    public var revision = ""

    public init(unit: ServiceUnit, node: RuntimeNode, files: [RemoteFile] = [], health: HealthProbe, afterStart: String? = nil, ready: String? = nil) {
        self.unit = unit
        self.node = node
        self.files = files
        self.health = health
        self.afterStart = afterStart
        self.ready = ready
    }

    /// Where the node keeps the digest of what is installed: equal digests mean nothing changed.
    public var digestPath: String { "/var/lib/provision/units/\(unit.name).digest" }

    /// A digest of everything that, when changed, needs a restart: the init script, the build it
    /// runs and the files.
    public var digest: String { digest(for: .openrc) }

    /// The digest for a node with `initSystem`: what that service manager runs (the OpenRC script,
    /// or systemd's unit file and environment file), the build and the files.
    public func digest(for initSystem: InitSystem) -> String {
        let unitFiles = initSystem == .systemd ? [unit.systemdUnit, unit.environmentFile] : [unit.initScript]
        return SHA256.hex((unitFiles + [revision] + files.map { "\($0.path)\n\($0.mode)\n\($0.contents)" }).joined(separator: "\u{0}"))
    }
}
