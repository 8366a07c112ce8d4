import Engine
import Foundation

/// Removes K3s from a machine that stays (`provision down --keep-infra`) with the uninstall script
/// K3s's installer wrote beside the binary (`INSTALL_K3S_BIN_DIR`, /usr/local/bin):
/// `k3s-uninstall.sh` on a server, `k3s-agent-uninstall.sh` on an agent. The script stops and
/// removes the service, kills K3s's processes, deletes the binary, the data (/var/lib/rancher/k3s,
/// with a server's datastore and every object in it) and the configuration (/etc/rancher/k3s),
/// and itself last. Then provision's own files on the node (`K3sInstall.directory`) go too.
///
/// Idempotent: a node without the script has nothing left to uninstall.
package enum K3sUninstall {
    /// Which of K3s's uninstall scripts.
    enum Role: String, Sendable {
        case server, agent

        /// The script's path, as K3s's installer writes it.
        var script: String { self == .server ? "/usr/local/bin/k3s-uninstall.sh" : "/usr/local/bin/k3s-agent-uninstall.sh" }
        /// The service it removes (OpenRC's `/etc/init.d/NAME`, systemd's `NAME.service`).
        var service: String { self == .server ? "k3s" : "k3s-agent" }
    }

    /// Printed on a node that has no uninstall script.
    static let absentMarker = "provision: no K3s uninstall script"

    /// Runs `role`'s uninstall script on `node`, or notes that K3s is already gone, then checks
    /// that the service is gone.
    static func run(_ role: Role, on node: K3sNode, log: StepLog) async throws {
        let script = role.script
        let result = try await node.must(
            "if [ -e \(script) ]; then sh \(script); else echo '\(absentMarker)'; fi",
            "running \(script) (K3s's uninstall script)", timeout: .seconds(300))
        if result.stdout.contains(absentMarker) {
            log.write("\(node.name): \(script) is not there: K3s is already uninstalled")
        } else {
            log.write("\(node.name): ran \(script)")
        }
        try await node.must("rm -rf \(K3sInstall.directory)", "removing \(K3sInstall.directory)")
        let left = try await node.run("[ ! -e /etc/init.d/\(role.service) ] && [ ! -e /etc/systemd/system/\(role.service).service ]", timeout: .seconds(20))
        guard left.succeeded else {
            throw StepFailure("""
                after \(script), the \(role.service) service is still installed on \(node.name): see the script's output in \
                'provision logs', remove K3s there by hand (or run the script again), then run 'provision down --keep-infra' again
                """)
        }
        log.write("\(node.name): K3s (\(role.rawValue)) uninstalled; the machine stays")
    }
}
