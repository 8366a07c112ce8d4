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
        var boots: [(instance: Instance, previous: SandboxHost?, userData: String?)] = []
        for instance in instances {
            if let host = recorded[instance.id], host.isRunning {
                if host.initSystem == initSystem {
                    result[instance.node] = host
                    continue
                }
                log.write("\(instance.node) boots \(host.initSystem.rawValue) but the plan says \(initSystem.rawValue): stopping its host to boot it again")
                await host.stop()
            }
            let userData = initSystem == .systemd ? try await cloud?.userData(instance: instance.id) : nil
            boots.append((instance, recorded[instance.id], userData))
        }
        guard !boots.isEmpty else { return result }
        // The machines boot together (a systemd one takes seconds to reach its sshd), their
        // addresses chosen and their sshd listening within one hold of the lock.
        let started = try await SandboxLock.withLock {
            var taken = Set(try Self.hosts(store).values.map(\.address))
            var specs: [SandboxHost.Spec] = []
            for boot in boots {
                // A restarted node keeps its address unless something else took it meanwhile.
                let kept = boot.previous.flatMap { LoopbackAddress.isFree($0.address, port: 22) ? $0.address : nil }
                let address = try kept ?? LoopbackAddress.allocate(port: 22, taken: taken)
                taken.insert(address)
                specs.append(.init(
                    instanceID: boot.instance.id, node: boot.instance.node, address: address,
                    directory: stateDirectory.appendingPathComponent("sandbox/hosts/\(boot.instance.id)"),
                    authorizedKey: authorizedKey, cloudInitDelay: cloudInitDelay, image: image, initSystem: initSystem, userData: boot.userData))
            }
            return await withTaskGroup(of: (Int, Result<SandboxHost, any Error>).self) { group in
                for (index, spec) in specs.enumerated() {
                    group.addTask {
                        do { return (index, .success(try await SandboxHost.start(spec))) } catch { return (index, .failure(error)) }
                    }
                }
                var outcomes = [Result<SandboxHost, any Error>?](repeating: nil, count: specs.count)
                for await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes.compactMap { $0 }
            }
        }
        // Every machine that booted is recorded (and so stopped by `down`) before a failure of
        // another is reported.
        var failure: (any Error)?
        for (boot, outcome) in zip(boots, started) {
            switch outcome {
            case .success(let host):
                try store.saveResource(kind: Self.kind, key: boot.instance.id, value: String(decoding: try JSONEncoder().encode(host), as: UTF8.self))
                log.write("\(boot.previous == nil ? "started" : "restarted") SSH host for \(boot.instance.node) (\(boot.instance.id)) on \(host.address):\(host.port)")
                result[boot.instance.node] = host
            case .failure(let error):
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return result
    }

    /// The recorded hosts by instance id.
    static func hosts(_ store: any StepStore) throws -> [String: SandboxHost] {
        try store.resources(kind: kind).compactMapValues { try? JSONDecoder().decode(SandboxHost.self, from: Data($0.utf8)) }
    }
}
