import Engine
import Foundation

/// Removes what is tagged for a plan but not kept (not in the Terraform state: an apply that was
/// SIGKILLed created it and never recorded it), kind by kind in `CloudResourceKind` order:
/// instances first, waiting until they are terminated (AWS keeps their network interfaces until
/// then), then key pairs, security groups, route table associations and route tables, internet
/// gateways, subnets, and VPCs last.
///
/// A resource already gone counts as removed. One still in use (`DependencyViolation`: AWS lets go
/// of a terminated instance's network a little later) is tried again until `patience` runs out.
package struct CloudSweeper: Sendable {
    let ec2: EC2Client
    let plan: String
    var patience: Duration = .seconds(300)

    /// What is tagged for the plan and not in `kept`.
    func leaks(keeping kept: PlanResources) async throws -> PlanResources {
        try await ec2.resources(plan: plan).subtracting(kept)
    }

    /// Removes everything tagged for the plan that `kept` does not hold; returns what it removed.
    @discardableResult
    func sweep(keeping kept: PlanResources, log: (String) -> Void) async throws -> PlanResources {
        let leaked = try await leaks(keeping: kept)
        guard !leaked.isEmpty else { return leaked }
        log("removing what is tagged provision:plan=\(plan) but not in the terraform state (an interrupted apply created it): \(leaked)")
        let deadline = ContinuousClock.now + patience
        for kind in CloudResourceKind.allCases {
            let ids = leaked[kind].sorted()
            for id in ids { try await remove(kind, id, until: deadline) }
            if kind == .instance && !ids.isEmpty { try await waitUntilTerminated(Set(ids), until: deadline) }
        }
        log("removed \(leaked)")
        return leaked
    }

    private func remove(_ kind: CloudResourceKind, _ id: String, until deadline: ContinuousClock.Instant) async throws {
        while true {
            do {
                return try await ec2.remove(kind, id)
            } catch let error as EC2Error where error.isNotFound {
                return
            } catch let error as EC2Error where error.isDependencyViolation && ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(5))
            } catch let error as EC2Error {
                throw StepFailure("cannot remove \(kind.rawValue) \(id), tagged provision:plan=\(plan) but not in the terraform state: \(error)")
            }
        }
    }

    private func waitUntilTerminated(_ ids: Set<String>, until deadline: ContinuousClock.Instant) async throws {
        while true {
            let left = try await ec2.resources(plan: plan)[.instance].intersection(ids)
            if left.isEmpty { return }
            guard ContinuousClock.now < deadline else {
                throw StepFailure("instances \(left.sorted().joined(separator: ", ")) are still shutting down after \(patience); run the command again once they are terminated")
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}
