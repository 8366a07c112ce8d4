import Engine
import Foundation

/// Boots each instance's machine as soon as the sandbox's EC2 API holds the instance, while
/// `terraform apply` still runs. The AWS provider first checks a new instance 10 s after
/// RunInstances, and an EC2 instance boots and runs its user data during that wait; here its
/// machine does the same. What this boots is recorded as `SandboxFleet.reconcile` records it, so
/// the reconcile after the apply finds the machines running and keeps them.
struct SandboxEarlyBoot: Sendable {
    let fleet: SandboxFleet
    let ec2: EC2Client
    let plan: String
    /// How often the EC2 API is asked for the plan's instances.
    var interval: Duration = .milliseconds(500)

    /// Runs `body` (the apply) while booting the instances it creates; returns (or throws) what
    /// `body` did once the boot in progress, if any, has ended, so no machine is left launched
    /// but unrecorded, even when `body` failed or was cancelled.
    func during<T: Sendable>(_ body: () async throws -> T, store: any StepStore, log: StepLog) async throws -> T {
        let finished = Finished()
        let watcher = Task { await watch(until: finished, store: store, log: log) }
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        await finished.set()
        await watcher.value
        return try result.get()
    }

    /// Boots every pending or running instance of the plan that has no machine, each tried once:
    /// one that fails to boot is left to the reconcile after the apply, which reports its error.
    /// Each poll's new instances boot in a task of their own, so an instance that appears while
    /// another boots (or waits for the machine-wide sandbox lock) is seen at once; all of them
    /// have ended when this returns.
    private func watch(until finished: Finished, store: any StepStore, log: StepLog) async {
        var tried: Set<String> = []
        var boots: [Task<Void, Never>] = []
        var lastError = ""
        while await !finished.value {
            do {
                let new = try await ec2.liveInstances(plan: plan).compactMap { instance -> SandboxFleet.Instance? in
                    guard ["pending", "running"].contains(instance.state), !tried.contains(instance.id), let node = instance.tags["Node"] else { return nil }
                    return .init(id: instance.id, node: node)
                }
                tried.formUnion(new.map(\.id))
                for instance in new {
                    log.write("instance \(instance.id) of \(instance.node) exists: booting its machine while terraform waits for it")
                }
                if !new.isEmpty {
                    boots.append(Task { [fleet] in
                        do { _ = try await fleet.bootNew(new, store: store, log: log) } catch {
                            log.write("a machine did not boot while terraform ran; the step boots it again after the apply: \(error)")
                        }
                    })
                }
            } catch {
                // Logged once while it repeats (an EC2 API that does not answer fails every poll).
                if "\(error)" != lastError { log.write("asking the EC2 API for the plan's instances failed: \(error)") }
                lastError = "\(error)"
            }
            try? await Task.sleep(for: interval)
        }
        for boot in boots { await boot.value }
    }

    /// Set once the apply has returned.
    private actor Finished {
        var value = false
        func set() { value = true }
    }
}
