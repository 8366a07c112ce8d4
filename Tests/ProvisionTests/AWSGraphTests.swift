import Foundation
import TestSupport
import Testing

/// `provision graph --plan plans/aws.yaml` shows the whole aws graph, K3s included, with no
/// credentials and without creating anything.
@Suite struct AWSGraphTests {
    @Test func awsPlanGraphShowsTheK3sStepsWithoutCredentials() async throws {
        let cli = CLI(environment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""])
        defer { cli.cleanUp() }
        let plan = CLI.repository.appendingPathComponent("plans/aws.yaml").path
        let graph = try await cli.run(["graph", "--plan", plan])
        #expect(graph.code == 0, "\(graph.stderr)")
        for edge in ["\"ssh.key\" -> \"terraform.apply\"", "\"terraform.apply\" -> \"node.ready\"", "\"node.ready\" -> \"k3s.server\"",
                     "\"k3s.server\" -> \"k3s.join\"", "\"k3s.join\" -> \"cluster.ready\"", "\"cluster.ready\" -> \"kubeconfig\""] {
            #expect(graph.stdout.contains(edge), "missing \(edge) in\n\(graph.stdout)")
        }
        #expect(!graph.stdout.contains("sandbox.cloud"))
        let validate = try await cli.run(["validate", "--plan", plan])
        #expect(validate.code == 0, "\(validate.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot + "/gpu-pipeline/store.sqlite"), "showing a graph creates no state")
    }
}
