import App
import ArgumentParser
import Engine
import Foundation

struct UnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Clear the state lock left by a killed or crashed run.",
        discussion: """
            Refuses while the holder is still running on this host, unless --force. A holder on another host \
            cannot be checked: make sure it is gone, then pass --force. --force also forgets the commands a \
            run on another host left recorded (which this host cannot stop).
            """
    )

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Clear the lock even if its holder may still be running.")
    var force = false

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
            if force, workspace.hasStore {
                let store = try workspace.openStore()
                for child in try store.children() where child.host != LockHolder.hostName {
                    try store.removeChild(id: child.id)
                    print("forgot pid \(child.pid) of step '\(child.step)' on host \(child.host) (\(child.command)); make sure it is gone")
                }
            }
            guard workspace.hasStore, let holder = try workspace.openStore().lockHolder() else {
                print("the state of plan '\(workspace.plan.name)' is not locked")
                return
            }
            guard holder.isDead || force else { throw LockError.holderAlive(holder) }
            let store = try workspace.openStore()
            try store.clearLock()
            try store.append([Event(run: try store.lastRun()?.id ?? 0, kind: .lock, message: "lock of \(holder) cleared by provision unlock")])
            print("cleared the lock held by \(holder); run 'provision resume' to continue that run")
        }
    }
}
