@testable import App
import Foundation
@testable import PlanLanguage
import TestSupport

/// `runtime: k3s` sandboxes for the K3s suites: a plan against the K3s stand-in (Tests/K3sStandIn)
/// given as airgap files, runs of the real binary on it, and what the stand-in counted.
enum K3sSandbox {
    static let version = "v1.33.4+k3s1"

    /// A sandbox plan with `runtime: k3s` in `sandbox`'s directory; `deploy`: the k8s/ tree that
    /// `platform` and `workloads` deploy (nil: they are left out, `k3s.deploy: false`); `monitoring`:
    /// whether the `monitoring` step installs the charts first (off unless a test asks).
    /// The waits no test measures (nodes answering, K3s installed, the cluster Ready, rollouts, charts) are generous: a clean-clone
    /// test run on two loaded cores has missed 30 s.
    @discardableResult
    static func writePlan(_ sandbox: Sandbox, workers: Int, version: String = version, token: Bool = false, merge: Bool = false,
                          extraArgs: [String] = [], deploy: String? = nil, rolloutTimeout: String = "90s",
                          monitoring: Bool = false, monitoringTimeout: String = "90s", verify: Bool = false,
                          pipeline: String = "", readyTimeout: String = "120s", installTimeout: String = "90s", binary: String? = nil, initSystem: InitSystem = .openrc,
                          k3sExtra: [String] = []) -> String {
        let repository = CLI.repository.path
        let directory = sandbox.cli.directory.path
        if !FileManager.default.fileExists(atPath: directory + "/k3s-airgap-images.tar") {
            _ = sandbox.cli.write("k3s-airgap-images.tar", "stand-in images tarball\n")
        }
        return sandbox.cli.write("plan.yaml", """
            name: \(sandbox.name)
            target: sandbox
            runtime: k3s
            \(token ? "secrets: {join: {env: K3S_TEST_TOKEN}}" : "")
            \(pipeline.isEmpty ? "" : "pipeline: \(pipeline)")
            cluster:
              worker_count: \(workers)
              node_ready_timeout: 120s
              terraform_dir: \(repository)/terraform
            sandbox:
              cloud_init_delay: 1s
              \(initSystem == .systemd ? "init: systemd\n  node_image: \(repository)/.tools/node-image-systemd" : "node_image: \(repository)/.tools/node-image")
            k3s:
              version: \(version)
              \(token ? "token: join" : "")
              install_timeout: \(installTimeout)
              extra_args: [\(extraArgs.joined(separator: ", "))]
              ready_timeout: \(readyTimeout)
              merge_kubeconfig: \(merge)
              deploy: \(deploy != nil)
              \(deploy.map { "manifests: \($0)" } ?? "")
              rollout_timeout: \(rolloutTimeout)
              monitoring: \(monitoring)
              monitoring_timeout: \(monitoringTimeout)
              verify: \(verify)             # nothing real runs in the stand-in's pods: the verify step cannot pass
              verify_timeout: 10s
              kubeconfig: \(directory)/kube/config
            \(k3sExtra.map { "  " + $0 }.joined(separator: "\n"))
              airgap:
                install_script: \(repository)/Tests/K3sStandIn/install.sh
                binary: \(binary ?? "\(repository)/Tests/K3sStandIn/k3s")
                images: \(directory)/k3s-airgap-images.tar

            """)
    }

    /// Runs `provision ARGS --plan <plan>` with `environment` added.
    static func run(_ sandbox: Sandbox, _ arguments: [String], environment: [String: String] = [:]) async throws -> CLI.Result {
        let process = try sandbox.cli.start(arguments + ["--plan", sandbox.planPath], environment: environment)
        while process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        return CLI.Result(code: process.exitCode, stdout: process.stdout, stderr: process.stderr, signaled: process.signaled)
    }

    /// How many times the stand-in's install script ran on each node (its counter file).
    static func installs(_ nodes: SandboxNodes) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes.inventory.nodes {
            let out = try await nodes.run("cat /var/lib/k3s-standin/installs 2>/dev/null | wc -l", on: node).stdout
            counts[node.name] = Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        return counts
    }

    /// Every file under the state root (but the sandbox nodes' own disks, `sandbox/hosts/*/{upper,work,root}`,
    /// which stand for the remote machines where K3s keeps its token) and every output given,
    /// searched for `secret`. grep reads the files in a child process: opening and closing the
    /// store's file here would drop this process's SQLite locks on it (POSIX locks are per process).
    static func leaks(of secret: String, in sandbox: Sandbox, outputs: [(String, String)]) throws -> [String] {
        let grep = Process()
        grep.executableURL = URL(fileURLWithPath: "/usr/bin/grep")
        grep.arguments = ["-rlaF", "--exclude-dir=upper", "--exclude-dir=work", "--exclude-dir=root", "-e", secret, sandbox.cli.stateRoot]
        let pipe = Pipe()
        grep.standardOutput = pipe
        try grep.run()
        let files = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        grep.waitUntilExit()
        return outputs.filter { $0.1.contains(secret) }.map(\.0) + files.split(separator: "\n").map(String.init)
    }
}
