@testable import App
import Engine
import Foundation
@testable import Infra
@testable import Kube
@testable import PlanLanguage
import Testing
import Yams

/// The K3s steps' pure parts: the kubeconfig edits, the agent-log causes, and the stand-in install
/// script's refusals (run here, where no service manager exists).
@Suite struct K3sPiecesTests {
    static let k3sYAML = """
        apiVersion: v1
        clusters:
        - cluster:
            certificate-authority-data: Q0EgZGF0YQ==
            server: https://127.0.0.1:6443
          name: default
        contexts:
        - context:
            cluster: default
            user: default
          name: default
        current-context: default
        kind: Config
        preferences: {}
        users:
        - name: default
          user:
            client-certificate-data: Y2VydA==
            client-key-data: a2V5

        """

    static let existing = """
        apiVersion: v1
        clusters:
        - cluster:
            server: https://prod.example.com:6443
          name: prod
        contexts:
        - context:
            cluster: prod
            namespace: default
            user: prod-admin
          name: prod
        current-context: prod
        kind: Config
        users:
        - name: prod-admin
          user:
            token: not-ours

        """

    @Test func renameTouchesOnlyNamesReferencesAndServerNeverOtherText() throws {
        // A certificate that happens to contain "default" must stay as it is (no blind replace).
        let text = Self.k3sYAML.replacingOccurrences(of: "Q0EgZGF0YQ==", with: "default-looking-data")
        let renamed = try Kubeconfig.rename(text, to: "gpu", server: "https://203.0.113.9:6443")
        #expect(renamed.contains("default-looking-data"))
        #expect(Kubeconfig.has(renamed, context: "gpu", server: "https://203.0.113.9:6443"))
        let top = try #require(try Yams.load(yaml: renamed) as? [String: Any])
        #expect(top["current-context"] as? String == "gpu")
        let context = ((top["contexts"] as? [[String: Any]])?.first?["context"]) as? [String: Any]
        #expect(context?["cluster"] as? String == "gpu" && context?["user"] as? String == "gpu")
        #expect(((top["users"] as? [[String: Any]])?.first?["name"]) as? String == "gpu")
    }

    @Test func mergeKeepsOtherEntriesAndRemoveTakesOnlyOurs() throws {
        let ours = try Kubeconfig.rename(Self.k3sYAML, to: "gpu", server: "https://203.0.113.9:6443")
        let merged = try Kubeconfig.merge(ours, named: "gpu", into: Self.existing)
        #expect(Kubeconfig.has(merged, context: "gpu", server: "https://203.0.113.9:6443"))
        #expect(Kubeconfig.has(merged, context: "prod", server: "https://prod.example.com:6443"))
        let top = try #require(try Yams.load(yaml: merged) as? [String: Any])
        #expect(top["current-context"] as? String == "prod", "the user's current context stays")
        // Merging again replaces ours, never duplicates it.
        let twice = try Kubeconfig.merge(ours, named: "gpu", into: merged)
        #expect(twice == merged)
        let removed = try Kubeconfig.remove(named: "gpu", from: merged)
        #expect(removed == Self.existing, "removing ours gives back the file byte for byte:\n\(removed)")
    }

    @Test func agentLogCausesAreRecognisedFromK3sMessages() {
        let password = #"time="x" level=error msg="Failed to retrieve agent config: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry""#
        #expect(AgentLogCause(log: "starting\n" + password) == .nodePasswordRejected)
        #expect(AgentLogCause(log: #"level=error msg="failed to get CA certs: https://10.0.1.5:6443/cacerts: 401 Unauthorized""#) == .wrongToken)
        #expect(AgentLogCause(log: #"msg="failed to get CA certs: Get \"https://10.0.1.5:6443/cacerts\": dial tcp 10.0.1.5:6443: connect: connection refused""#)
                == .serverUnreachable)
        #expect(AgentLogCause(log: #"level=info msg="Waiting to retrieve agent configuration; server is not ready: context deadline exceeded""#) == .serverNotAnswering)
        #expect(AgentLogCause(log: "level=info msg=\"Starting k3s agent\"") == .unknown)
        let message = AgentLogCause.nodePasswordRejected.message(worker: "worker-2", server: "control-plane", url: "https://10.0.1.5:6443",
                                                                 deadline: .seconds(20), tokenSecret: nil, logFile: "/var/log/k3s-agent.log", tail: password)
        #expect(message.contains("k3s kubectl delete node worker-2") && message.contains("provision resume") && message.contains(password))
    }

    @Test func nodeListGivesReadinessVersionAndTheReasonOfANotReadyNode() throws {
        let json = """
            {"kind": "NodeList", "items": [
              {"metadata": {"name": "control-plane"}, "status": {"nodeInfo": {"kubeletVersion": "v1.33.4+k3s1"},
               "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}},
              {"metadata": {"name": "worker-1"}, "status": {"nodeInfo": {"kubeletVersion": "v1.33.4+k3s1"},
               "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "cni plugin not initialized"}]}}
            ]}
            """
        let nodes = try KubeNode.list(Data(json.utf8))
        #expect(nodes.map(\.name) == ["control-plane", "worker-1"])
        #expect(nodes[0].isReady && nodes[0].version == "v1.33.4+k3s1")
        #expect(!nodes[1].isReady && nodes[1].condition == "NotReady (KubeletNotReady: cni plugin not initialized)")
        #expect(throws: StepFailure.self) { try KubeNode.list(Data("error: the server is down".utf8)) }
        #expect(K3sAccess.version(fromVersionOutput: "k3s version v1.33.4+k3s1 (abc123)\ngo version go1.24") == "v1.33.4+k3s1")
    }

    @Test func installArgumentsUsePrivateAddressesOnAWSAndTheNodesOwnOnSandboxNodes() throws {
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        let settings = K3sSettings(plan: plan, spec: try #require(plan.k3s), secrets: [:], ssh: nil)
        let route = ClusterInventory.SSHRoute(host: "54.1.2.3", port: 22, user: "ubuntu", pinKey: "i-1")
        let control = ClusterInventory.Node(name: "control-plane", role: "server", instanceID: "i-1", publicAddress: "54.1.2.3",
                                            privateAddress: "10.0.1.5", ssh: route)
        let worker = ClusterInventory.Node(name: "worker-1", role: "worker", instanceID: "i-2", publicAddress: "", privateAddress: "10.0.1.6", ssh: route)
        #expect(try K3sServerStep(settings: settings).exec(control)
                == "server --tls-san 54.1.2.3 --node-name control-plane --node-ip 10.0.1.5 --write-kubeconfig-mode 600 "
                + "--cluster-cidr 10.52.0.0/16 --service-cidr 10.53.0.0/16 --cluster-dns 10.53.0.10 --disable traefik --kubelet-arg=max-pods=110")
        #expect(try K3sJoinStep(worker: "worker-1", settings: settings).exec(worker) == "agent --node-name worker-1 --node-ip 10.0.1.6")
        #expect(settings.mergeTarget?.path.hasSuffix("/.kube/config") == true)
        let sandbox = K3sAccess(ssh: nil, sandbox: true)
        #expect(try sandbox.clusterAddress(control) == "54.1.2.3" && sandbox.reachableAddress(control) == "54.1.2.3", "sandbox nodes serve at their SSH address")
    }

    /// Runs the stand-in install script here with `environment` (no OpenRC on this machine).
    func install(_ environment: [String: String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [repositoryRoot.appendingPathComponent("Tests/K3sStandIn/install.sh").path]
        // No systemctl or openrc-run on this PATH (this machine has a systemctl binary but no systemd running).
        process.environment = ["PATH": "/nonexistent"].merging(environment) { $1 }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func standInInstallScriptRefusesWhatK3sRefuses() throws {
        let first = try String(contentsOf: repositoryRoot.appendingPathComponent("Tests/K3sStandIn/install.sh"), encoding: .utf8).prefix { $0 != "\n" }
        #expect(first.contains("STAND-IN"))
        let binary = try String(contentsOf: repositoryRoot.appendingPathComponent("Tests/K3sStandIn/k3s"), encoding: .utf8).prefix { $0 != "\n" }
        #expect(binary.contains("STAND-IN"))
        let http = try install(["K3S_URL": "http://10.0.0.1:6443", "K3S_TOKEN": "x"])
        #expect(http.status == 1 && http.stderr.contains("Only https:// URLs are supported"), "\(http)")
        let tokenless = try install(["K3S_URL": "https://10.0.0.1:6443"])
        #expect(tokenless.status == 1 && tokenless.stderr.contains("K3S_TOKEN or K3S_TOKEN_FILE is not defined"), "\(tokenless)")
        let unmanaged = try install(["INSTALL_K3S_SKIP_DOWNLOAD": "true"])
        #expect(unmanaged.status == 1 && unmanaged.stderr.contains("Can not find systemd or openrc"), "\(unmanaged)")
    }
}
