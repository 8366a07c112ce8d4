import Engine
import Foundation
import Transport

/// What a rolling upgrade does around one node's reinstall (a new `k3s.version`, or changed K3s
/// flags, on a node already in the cluster): take it out of service (cordon, drain honouring
/// PodDisruptionBudgets) before, put it back (uncordon) after.
///
/// A marker on the control plane (`markers/<node>`) is written with the cordon and removed with
/// the uncordon (one command each): a run killed in between leaves it, so the next run knows the
/// cordon is its own to undo (a node an operator cordoned has none and is left alone). Cordons,
/// drains and uncordons hold a lock on the control plane (a drain for its whole run), so a drain
/// that a killed run left behind ends before the next starts: no node is ever drained while
/// another is; and a drain runs only while the node's marker exists, so one that a killed run sent
/// as it died cannot cordon a node a later run has put back (`Kubectl.TakeOut`).
package struct NodeUpgrade: Sendable {
    /// Where the markers live on the control plane.
    static let markers = "\(K3sInstall.directory)/cordoned"
    static let drainLock = "\(K3sInstall.directory)/drain.lock"

    /// Where the typed client runs.
    let control: K3sNode
    /// `k3s.drain_timeout`.
    let drainTimeout: Duration

    /// A marker this old whose node is in service is stale; a younger one may belong to a cordon
    /// under way (its marker written, the Node not yet unschedulable when the cluster was asked).
    static let staleAfter = 60

    /// The nodes an interrupted upgrade left cordoned: a marker, and the Node still unschedulable.
    /// A marker whose node is in service (or gone) for `staleAfter` seconds is stale: it is removed
    /// here and counts for nothing.
    static func leftCordoned(on control: K3sNode) async throws -> Set<String> {
        // "<node> <age in seconds>" for each marker.
        let listed = try await control.run("cd \(markers) 2>/dev/null && now=$(date +%s) && for f in *; do [ -e \"$f\" ] && echo \"$f $((now - $(stat -c %Y \"$f\")))\"; done",
                                           timeout: .seconds(20)).stdout
        var ages: [String: Int] = [:]
        for line in listed.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let age = Int(fields[1]) { ages[String(fields[0])] = age }
        }
        guard !ages.isEmpty else { return [] }
        let cordoned = Set(try await K3sAccess.clusterNodes(on: control).filter(\.unschedulable).map(\.name))
        let stale = ages.filter { !cordoned.contains($0.key) && $0.value >= staleAfter }.keys
        if !stale.isEmpty {
            _ = try await control.run("cd \(markers) && rm -f " + stale.sorted().map(Shell.quoted).joined(separator: " "), timeout: .seconds(20))
        }
        return Set(ages.keys).intersection(cordoned)
    }

    /// `node`'s lock and marker on the control plane (see `Kubectl.TakeOut`).
    private func outOfService(_ node: String) -> Kubectl.TakeOut {
        Kubectl.TakeOut(lock: Self.drainLock, marker: "\(Self.markers)/\(node)")
    }

    /// Cordons and drains `node`. When the drain does not finish within `drainTimeout`, puts the
    /// node back and fails naming the pods it could not evict and the budgets that protect them.
    func takeOut(_ node: String, version: String, log: StepLog) async throws {
        try await control.kube().cordon(node, outOfService(node))
        log.write("\(node): cordoned; draining it (k3s.drain_timeout \(drainTimeout.formatted))")
        let result = try await control.kube().drain(node, timeout: drainTimeout, outOfService(node))
        guard result.succeeded else {
            let blocked = try await blockers(result.stderr)
            try await putBack(node, log: log)
            let detail = blocked.isEmpty ? String(result.stderr.suffix(800)).trimmingCharacters(in: .whitespacesAndNewlines) : blocked.joined(separator: "\n  ")
            throw StepFailure("""
                the drain of \(node) did not finish within \(drainTimeout.formatted) (k3s.drain_timeout); \(node) was uncordoned and still runs K3s \(version):
                  \(detail)
                  give the workload more replicas or relax its PodDisruptionBudget (or raise k3s.drain_timeout), then run 'provision up'
                """, retryable: false)
        }
        let evicted = result.stdout.split(separator: "\n").filter { $0.hasPrefix("pod/") && $0.hasSuffix(" evicted") }.count
        log.write("\(node): drained (\(evicted) pod\(evicted == 1 ? "" : "s") evicted)")
    }

    /// Uncordons `node` and removes its marker.
    func putBack(_ node: String, log: StepLog) async throws {
        try await control.kube().uncordon(node, outOfService(node))
        log.write("\(node): uncordoned")
    }

    /// Each pod the drain could not evict (the drain names them `pods/"NAME" -n "NS"`), with the
    /// PodDisruptionBudgets that select it and their status.
    private func blockers(_ stderr: String) async throws -> [String] {
        var pods: [(namespace: String, name: String)] = []
        for line in stderr.split(separator: "\n") {
            guard let start = line.range(of: "pods/\""), let end = line[start.upperBound...].range(of: "\" -n \"") else { continue }
            let name = String(line[start.upperBound..<end.lowerBound])
            let namespace = String(line[end.upperBound...].prefix { $0 != "\"" })
            if !pods.contains(where: { $0.namespace == namespace && $0.name == name }) { pods.append((namespace, name)) }
        }
        var lines: [String] = []
        for pod in pods {
            let labels = (try? await podLabels(pod.name, namespace: pod.namespace)) ?? [:]
            let selecting = ((try? await self.budgets(in: pod.namespace)) ?? []).filter { $0.selects(labels) }
            // The budgets that allow no disruption are the ones that blocked it (others may select it too).
            let blocking = selecting.filter { ($0.status?.disruptionsAllowed ?? 0) < 1 }
            let budgets = blocking.isEmpty ? selecting : blocking
            let named = budgets.map { "PodDisruptionBudget \(pod.namespace)/\($0.name) (\($0.rule); \($0.health))" }
            lines.append("pod \(pod.namespace)/\(pod.name) could not be evicted: "
                         + (named.isEmpty ? "no PodDisruptionBudget selects it (see \(Kubectl.shown("describe pod \(pod.name) -n \(pod.namespace)")))"
                                          : "protected by " + named.joined(separator: ", ")))
        }
        return lines
    }

    private func podLabels(_ name: String, namespace: String) async throws -> [String: String] {
        try await control.kube().read(PodLabels.self, ["pod/\(name)"], namespace: namespace, what: "reading pod \(namespace)/\(name)").metadata.labels ?? [:]
    }

    private func budgets(in namespace: String) async throws -> [Budget] {
        try await control.kube().read(BudgetList.self, ["poddisruptionbudgets"], namespace: namespace, what: "listing the PodDisruptionBudgets of \(namespace)").items
    }

    /// The fields of a Pod read here.
    private struct PodLabels: Decodable {
        struct Metadata: Decodable { var labels: [String: String]? }
        var metadata: Metadata
    }

    /// A PodDisruptionBudget (policy/v1), the fields read here.
    struct Budget: Decodable {
        struct Metadata: Decodable { var name: String }
        struct Spec: Decodable {
            struct Selector: Decodable { var matchLabels: [String: String]? }
            var selector: Selector?
            var minAvailable: IntOrString?
            var maxUnavailable: IntOrString?
        }
        struct Status: Decodable { var currentHealthy: Int?; var expectedPods: Int?; var disruptionsAllowed: Int? }
        var metadata: Metadata
        var spec: Spec?
        var status: Status?

        var name: String { metadata.name }
        /// "minAvailable 1" or "maxUnavailable 0".
        var rule: String {
            if let min = spec?.minAvailable { return "minAvailable \(min.text)" }
            return "maxUnavailable \(spec?.maxUnavailable?.text ?? "?")"
        }
        /// "1 of 1 pods healthy, 0 disruptions allowed".
        var health: String {
            "\(status?.currentHealthy ?? 0) of \(status?.expectedPods ?? 0) pods healthy, \(status?.disruptionsAllowed ?? 0) disruptions allowed"
        }

        func selects(_ labels: [String: String]) -> Bool {
            (spec?.selector?.matchLabels ?? [:]).allSatisfy { labels[$0.key] == $0.value }
        }
    }

    /// Kubernetes' int-or-string (`1`, `"50%"`).
    struct IntOrString: Decodable {
        var text: String
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) { text = String(number) } else { text = try container.decode(String.self) }
        }
    }

    private struct BudgetList: Decodable { var items: [Budget] }
}
