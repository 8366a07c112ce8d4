import Engine
import Foundation
import Transport

/// `ssh.key`: the plan's own ed25519 key pair (`state/<plan>/ssh/id_ed25519`, 0600), installed on
/// every node by Terraform. Output: `public_key`.
package struct SSHKeyStep: Step {
    /// This step's id.
    package static let id = StepID("ssh.key")

    /// The plan's key step (it has no settings: the key's path comes from the state directory).
    package init() {}

    package var id: StepID { Self.id }
    package var inputs: String { "ssh.key ed25519" }
    package var hasCheck: Bool { true }
    /// Kept by `down --keep-infra`.
    package var isInfrastructure: Bool { true }

    /// The output holding the public key.
    private static let publicKeyOutput = "public_key"

    /// The public key (OpenSSH's one-line form) this step recorded, among a dependent step's
    /// upstream outputs.
    static func publicKey(in upstream: [StepID: StepOutputs]) -> String? {
        upstream[id]?[publicKeyOutput]?.scalarText
    }

    package static func keyFile(_ stateDirectory: URL) -> URL {
        stateDirectory.appendingPathComponent("ssh/id_ed25519")
    }

    package func check(_ context: StepContext) async throws -> CheckResult {
        let key = Self.keyFile(context.stateDirectory)
        guard FileManager.default.fileExists(atPath: key.path),
              let pub = try? String(contentsOfFile: key.path + ".pub", encoding: .utf8) else { return .unsatisfied("no key pair yet") }
        return .satisfied([Self.publicKeyOutput: .string(pub.trimmingCharacters(in: .whitespacesAndNewlines))])
    }

    package func apply(_ context: StepContext) async throws -> StepOutputs {
        let key = Self.keyFile(context.stateDirectory)
        try FileManager.default.createDirectory(at: key.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let pub = try await SSHKeys.generate(at: key, comment: "provision", runner: LocalCommandRunner(context))
        return [Self.publicKeyOutput: .string(pub)]
    }
}
