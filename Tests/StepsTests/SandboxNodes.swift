@testable import App
import Engine
import Foundation
@testable import Infra
@testable import PlanLanguage
@testable import Transport

/// Real sandbox SSH hosts for tests, in a temporary directory, stopped by PID when done.
actor SandboxNodes {
    nonisolated let directory: URL
    nonisolated let store: SQLiteRunStore
    nonisolated let identityFile: URL
    nonisolated let publicKey: String
    /// The node image the nodes boot from; nil for the bare host (no cloud-init, no OpenRC).
    nonisolated let image: URL?
    /// What the nodes boot.
    nonisolated let initSystem: InitSystem
    /// Each node's user data (a systemd node's NoCloud seed), by node name.
    nonisolated let userData: @Sendable (String) -> String?
    private(set) var hosts: [SandboxHost] = []
    private var count = 0

    init(image: URL? = nil, initSystem: InitSystem = .openrc, userData: @escaping @Sendable (String) -> String? = { _ in nil }) async throws {
        self.image = image
        self.initSystem = initSystem
        self.userData = userData
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-nodes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try SQLiteRunStore(directory: directory.appendingPathComponent("state"))
        identityFile = directory.appendingPathComponent("id_ed25519")
        publicKey = try await SSHKeys.generate(at: identityFile, comment: "tests")
    }

    /// Boots `count` nodes named node-1, node-2, ... in parallel.
    @discardableResult
    func start(_ count: Int) async throws -> [SandboxHost] {
        let names = (0..<count).map { _ in self.count += 1; return self.count }
        let started = try await withThrowingTaskGroup(of: SandboxHost.self) { group in
            for n in names {
                group.addTask { try await self.boot(n) }
            }
            var started: [SandboxHost] = []
            for try await host in group { started.append(host) }
            return started
        }
        hosts += started
        return started.sorted { $0.node.localizedStandardCompare($1.node) == .orderedAscending }
    }

    /// Stops a node, deletes its host key and starts it again on the same address with a new
    /// key, all under the sandbox lock so no parallel test takes the address meanwhile.
    func rebuildWithNewHostKey(_ host: SandboxHost) async throws -> SandboxHost {
        let publicKey = publicKey
        let again = try await SandboxLock.withLock {
            await host.stop()
            try FileManager.default.removeItem(atPath: host.directory + "/ssh_host_ed25519_key")
            return try await SandboxHost.start(.init(
                instanceID: host.instanceID, node: host.node, address: host.address, directory: URL(fileURLWithPath: host.directory),
                authorizedKey: publicKey, cloudInitDelay: .zero, image: nil))
        }
        hosts.append(again)
        return again
    }

    /// Nodes pick free addresses under the machine-wide sandbox lock.
    private nonisolated func boot(_ n: Int) async throws -> SandboxHost {
        let dir = self.directory.appendingPathComponent("node-\(n)")
        let publicKey = publicKey
        return try await SandboxLock.withLock {
            let address = try LoopbackAddress.allocate(port: 22, taken: [])
            return try await SandboxHost.start(.init(
                instanceID: "i-test\(n)", node: "node-\(n)", address: address, directory: dir,
                authorizedKey: publicKey, cloudInitDelay: .zero, image: image, initSystem: initSystem, userData: userData("node-\(n)")))
        }
    }

    /// Stops a node and boots it again from the same directory (its disk), address and host key:
    /// a reboot, under the sandbox lock so no parallel test takes the address meanwhile.
    func reboot(_ host: SandboxHost) async throws -> SandboxHost {
        let (publicKey, image, initSystem, userData) = (publicKey, image, initSystem, userData(host.node))
        let again = try await SandboxLock.withLock {
            await host.stop()
            return try await SandboxHost.start(.init(
                instanceID: host.instanceID, node: host.node, address: host.address, directory: URL(fileURLWithPath: host.directory),
                authorizedKey: publicKey, cloudInitDelay: .zero, image: image, initSystem: initSystem, userData: userData))
        }
        hosts.append(again)
        return again
    }

    nonisolated func endpoint(_ host: SandboxHost) -> SSHEndpoint {
        SSHEndpoint(name: host.node, host: host.address, port: host.port, user: "root", identityFile: identityFile.path)
    }

    /// Stops every node this helper started (by PID) and removes its files.
    func stopAll() async {
        for host in hosts { await host.stop() }
        hosts.removeAll()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` with fresh sandbox nodes and stops every node it started, also when it throws.
func withSandboxNodes(image: URL? = nil, initSystem: InitSystem = .openrc, userData: @escaping @Sendable (String) -> String? = { _ in nil },
                      _ body: (SandboxNodes) async throws -> Void) async throws {
    let nodes = try await SandboxNodes(image: image, initSystem: initSystem, userData: userData)
    do {
        try await body(nodes)
    } catch {
        await nodes.stopAll()
        throw error
    }
    await nodes.stopAll()
}
