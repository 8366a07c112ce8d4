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
        var boots: [Boot] = []
        for instance in instances {
            if let host = recorded[instance.id], host.isRunning {
                if host.initSystem == initSystem {
                    result[instance.node] = host
                    continue
                }
                log.write("\(instance.node) boots \(host.initSystem.rawValue) but the plan says \(initSystem.rawValue): stopping its host to boot it again")
                await host.stop()
            }
            boots.append(try await Boot(instance: instance, previous: recorded[instance.id], userData: userData(instance)))
        }
        return result.merging(try await start(boots, store: store, log: log)) { $1 }
    }

    /// Boots the machines of those `instances` that have no host recorded (running or not) and
    /// records them, touching no other host: what `SandboxEarlyBoot` does while terraform still
    /// waits for the instances it created. Returns the new hosts by node name.
    func bootNew(_ instances: [Instance], store: any StepStore, log: StepLog) async throws -> [String: SandboxHost] {
        let recorded = try Self.hosts(store)
        var boots: [Boot] = []
        for instance in instances where recorded[instance.id] == nil {
            boots.append(try await Boot(instance: instance, previous: nil, userData: userData(instance)))
        }
        return try await start(boots, store: store, log: log)
    }

    /// A systemd node's NoCloud seed: its instance's user data as the EC2 API holds it.
    private func userData(_ instance: Instance) async throws -> String? {
        initSystem == .systemd ? try await cloud?.userData(instance: instance.id) : nil
    }

    /// Boots `boots`; every machine is recorded as soon as it is launched (so `down` stops it, and
    /// a SIGKILL while it boots leaves no machine unrecorded). Returns the hosts by node name, or
    /// throws the first machine's failure.
    private func start(_ boots: [Boot], store: any StepStore, log: StepLog) async throws -> [String: SandboxHost] {
        guard !boots.isEmpty else { return [:] }
        let outcomes = try await SandboxLock.withLock { try await boot(boots, store: store, log: log) }
        var result: [String: SandboxHost] = [:]
        var failure: (any Error)?
        for (boot, outcome) in zip(boots, outcomes) {
            switch outcome {
            case .success(let booted):
                let host = booted.host
                log.write("\(boot.previous == nil ? "started" : "restarted") SSH host for \(boot.instance.node) (\(boot.instance.id)) on \(host.address):\(host.port), "
                          + "its sshd up \(booted.bootTime.formatted) after launch (\(host.initSystem.rawValue))")
                result[boot.instance.node] = host
            case .failure(let error):
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return result
    }

    /// A machine to boot: its instance, its host before (a restart keeps its address), its user data.
    struct Boot {
        let instance: Instance
        let previous: SandboxHost?
        let userData: String?
    }

    /// A machine whose sshd answers, and how long after its launch it did (the node's boot time).
    struct Booted {
        let host: SandboxHost
        let bootTime: Duration
    }

    /// Launches, records and logs every machine, one after another, then awaits each one's sshd:
    /// the machines boot side by side (a systemd machine takes seconds to reach its sshd), and
    /// their addresses are chosen and listening within one hold of the sandbox lock. One outcome
    /// per boot, in order.
    private func boot(_ boots: [Boot], store: any StepStore, log: StepLog) async throws -> [Result<Booted, any Error>] {
        var taken = Set(try Self.hosts(store).values.map(\.address))
        var launched: [(outcome: Result<SandboxHost, any Error>, at: ContinuousClock.Instant)] = []
        for boot in boots {
            let at = ContinuousClock.now
            let outcome = await Self.outcome {
                // A restarted node keeps its address unless something else took it meanwhile.
                let kept = boot.previous.flatMap { LoopbackAddress.isFree($0.address, port: 22) ? $0.address : nil }
                let address = try kept ?? LoopbackAddress.allocate(port: 22, taken: taken)
                taken.insert(address)
                let host = try await SandboxHost.launch(.init(
                    instanceID: boot.instance.id, node: boot.instance.node, address: address,
                    directory: stateDirectory.appendingPathComponent("sandbox/hosts/\(boot.instance.id)"),
                    authorizedKey: authorizedKey, cloudInitDelay: cloudInitDelay, image: image, initSystem: initSystem, userData: boot.userData))
                try store.saveResource(kind: Self.kind, key: boot.instance.id, value: String(decoding: try JSONEncoder().encode(host), as: UTF8.self))
                log.write("launched the machine of \(boot.instance.node) (\(boot.instance.id)) on \(address)")
                return host
            }
            launched.append((outcome, at))
        }
        var outcomes: [Result<Booted, any Error>] = []
        for (outcome, at) in launched {
            outcomes.append(await Self.outcome {
                let host = try outcome.get()
                try await host.awaitSSH()
                return Booted(host: host, bootTime: .now - at)
            })
        }
        return outcomes
    }

    /// `body`'s value or error.
    private static func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// The recorded hosts by instance id.
    static func hosts(_ store: any StepStore) throws -> [String: SandboxHost] {
        try store.resources(kind: kind).compactMapValues { try? JSONDecoder().decode(SandboxHost.self, from: Data($0.utf8)) }
    }
}
