import App
import ArgumentParser
import Foundation
import Verification

/// `provision secrets grafana`: the one place a generated credential is shown.
struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Show a credential the provisioner generated (runtime: k3s): grafana.",
        discussion: """
            grafana: Grafana's admin user and password. The monitoring step generates the password on the \
            control plane (a 0600 file under /var/lib/provision/k3s/secrets, the Secret \
            monitoring/grafana-admin); it is read from there over SSH and printed here only, never logged or \
            stored on this machine.

              provision secrets grafana --plan plans/aws.yaml
                  user and password, one per line
              provision secrets grafana --plan plans/aws.yaml --json
                  {"password":"…","user":"admin"}
            """
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Which credential: grafana.")
    var name: String

    func validate() throws {
        guard Workspace.secretNames.contains(name) else {
            throw ValidationError("no generated secret named '\(name)'; known: \(Workspace.secretNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
            let credential: GeneratedCredential
            do {
                credential = try await workspace.grafanaAdmin()
            } catch let error as PipelineUnavailable {
                throw ValidationError(error.description)
            }
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(credential), as: UTF8.self))
            } else {
                print("user: \(credential.user)\npassword: \(credential.password)")
            }
        }
    }
}
