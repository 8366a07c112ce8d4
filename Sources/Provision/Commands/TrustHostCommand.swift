import App
import ArgumentParser
import Engine
import Foundation
import Infra

struct TrustHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust-host",
        abstract: "Forget a node's pinned SSH host key, deliberately.",
        discussion: """
            Host keys are pinned on first contact; a different key later stops every step that talks to \
            that node. If you rebuilt the node yourself, run this with the node name (worker-1) or the pin \
            named in the error, then 'provision resume': the next contact pins the new key.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "A node name (worker-1) or the pinned key's name from the error (an instance id).")
    var host: String

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace()
            let store = try workspace.openStore()
            var key = host
            if try store.pinnedHostKey(key) == nil, let node = try ClusterInventory.recorded(in: store)?.node(named: host) {
                key = node.ssh?.pinKey ?? node.instanceID
            }
            guard let pinned = try store.pinnedHostKey(key) else {
                throw ValidationError("no host key is pinned for '\(host)'; 'provision status' lists the nodes")
            }
            try store.forgetHostKey(key)
            try store.append([Event(run: try store.lastRun()?.id ?? 0, kind: .hostKeyForgotten, message: "host key \(pinned) of \(key) forgotten by provision trust-host")])
            print("forgot host key \(pinned) of \(key); the next contact pins the key the node presents. Run 'provision resume' or 'provision up'.")
        }
    }
}
