import Engine
import Foundation
import PlanLanguage

/// Keeps exactly one sandbox SSH host per live instance: starts hosts for new instances, restarts
/// stopped ones (same address, same host key), stops the hosts of instances that are gone, and
/// records instance id → host in the run store (kind `sandbox-host`).
package struct SandboxFleet: Sendable {
    static let kind = "sandbox-host"

    let stateDirectory: URL
    let image: URL?
    let authorizedKey: String
    let cloudInitDelay: Duration
    /// What the nodes boot.
    var initSystem: InitSystem = .openrc
    /// The sandbox's EC2 API, which holds each instance's user data (a systemd node's NoCloud seed).
    var cloud: EC2Client?

    /// An instance Terraform reports.
    struct Instance: Sendable {
        let id: String
        let node: String
    }

    /// Makes the hosts match `instances`; returns the host of every instance by node name.
    func reconcile(_ instances: [Instance], store: any StepStore, log: StepLog) async throws -> [String: SandboxHost] {
        var recorded = try Self.hosts(store)
        let wanted = Set(instances.map(\.id))
        for (id, host) in recorded where !wanted.contains(id) {
            log.write("instance \(id) (\(host.node)) is gone: stopping its host \(host.address)")
            await host.stop()
            try store.removeResource(kind: Self.kind, key: id)
            try store.forgetHostKey(id)
            try? FileManager.default.removeItem(atPath: host.directory)
            recorded[id] = nil
        }
        var result: [String: SandboxHost] = [:]
        for instance in instances {
            if let host = recorded[instance.id], host.isRunning {
                if host.initSystem == initSystem {
                    result[instance.node] = host
                    continue
                }
                log.write("\(instance.node) boots \(host.initSystem.rawValue) but the plan says \(initSystem.rawValue): stopping its host to boot it again")
                await host.stop()
            }
            let previous = recorded[instance.id]
            let userData = initSystem == .systemd ? try await cloud?.userData(instance: instance.id) : nil
            let host = try await SandboxLock.withLock {
                let taken = Set(try Self.hosts(store).values.map(\.address))
                // A restarted node keeps its address unless something else took it meanwhile.
                let kept = previous.flatMap { LoopbackAddress.isFree($0.address, port: 22) ? $0.address : nil }
                let address = try kept ?? LoopbackAddress.allocate(port: 22, taken: taken)
                return try await SandboxHost.start(.init(
                    instanceID: instance.id, node: instance.node, address: address,
                    directory: stateDirectory.appendingPathComponent("sandbox/hosts/\(instance.id)"),
                    authorizedKey: authorizedKey, cloudInitDelay: cloudInitDelay, image: image, initSystem: initSystem, userData: userData))
            }
            try store.saveResource(kind: Self.kind, key: instance.id, value: String(decoding: try JSONEncoder().encode(host), as: UTF8.self))
            log.write("\(previous == nil ? "started" : "restarted") SSH host for \(instance.node) (\(instance.id)) on \(host.address):\(host.port)")
            result[instance.node] = host
        }
        return result
    }

    /// The recorded hosts by instance id.
    static func hosts(_ store: any StepStore) throws -> [String: SandboxHost] {
        try store.resources(kind: kind).compactMapValues { try? JSONDecoder().decode(SandboxHost.self, from: Data($0.utf8)) }
    }
}
