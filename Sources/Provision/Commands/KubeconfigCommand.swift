import App
import ArgumentParser
import Foundation

struct KubeconfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeconfig",
        abstract: "Print the path of the cluster's kubeconfig (runtime: k3s).",
        discussion: """
            The kubeconfig step writes state/<plan>/kubeconfig (0600): K3s's admin kubeconfig with the server \
            this machine reaches and the cluster, user and context named after the plan.

              KUBECONFIG=$(provision kubeconfig --plan plans/aws.yaml) helm list -A

            With 'k3s.api_access: forward' the server is https://127.0.0.1:<k3s.api_local_port>: keep \
            'provision port-forward api' running while a client uses it (a note on stderr says so).
            """
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
            let path = workspace.kubeconfigPath.path
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("plan '\(workspace.plan.name)' has no kubeconfig yet (\(path)); run 'provision up' with 'runtime: k3s'")
            }
            print(path)
            if let k3s = workspace.plan.k3s, k3s.apiAccess == .forward {
                let note = "provision: note: k3s.api_access is forward: this kubeconfig's server is https://127.0.0.1:\(k3s.apiLocalPort); "
                    + "run 'provision port-forward api --plan \(options.plan)' and keep it running while you use it\n"
                FileHandle.standardError.write(Data(note.utf8))
            }
        }
    }
}
