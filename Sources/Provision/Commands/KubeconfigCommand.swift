import ArgumentParser
import Foundation
import Steps

struct KubeconfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeconfig",
        abstract: "Print the path of the cluster's kubeconfig (runtime: k3s).",
        discussion: """
            The kubeconfig step writes state/<plan>/kubeconfig (0600): K3s's admin kubeconfig with the
            server this machine reaches and the cluster, user and context named after the plan.
              kubectl --kubeconfig "$(provision kubeconfig --plan plans/aws.yaml)" get nodes
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
        }
    }
}
