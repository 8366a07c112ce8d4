@testable import App
@testable import Engine
import Foundation
@testable import Kube
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `provision port-forward` and `k3s.api_access: forward` on sandbox nodes, against the K3s stand-in
/// (Tests/K3sStandIn): the Service lookup is the stand-in's kubectl, the API its HTTPS server; what
/// the Prometheus Service leads to is a real HTTP server on the control plane. Nothing here is real K3s.
@Suite(.serialized) struct SandboxK3sForwardTests {
    /// A port nothing listens on now, on 127.0.0.1.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    /// The `url` of the JSON line a running `port-forward --json` prints first.
    static func url(of process: CLI.Running) async throws -> String {
        var found: String?
        try await waitUntil(timeout: .seconds(60), every: .milliseconds(100)) {
            guard process.isRunning else { throw StepFailure("port-forward ended (exit \(process.exitCode)): \(process.stderr)") }
            let line = process.stdout.split(separator: "\n").first.map(String.init) ?? ""
            found = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["url"] as? String
            return found != nil
        }
        return found!
    }

    /// Sends `signal` and waits for the process to end.
    static func stop(_ process: CLI.Running, with signal: Int32) async throws {
        kill(process.pid, signal)
        try await waitUntil(timeout: .seconds(20), every: .milliseconds(50)) { !process.isRunning }
    }

    /// Runs curl with `arguments`; its exit status and output.
    static func curl(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "20"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test func portForwardReachesARealServerBehindTheServiceAndTheAPIWhoseCertificateNames127001AndSignalsCloseThePort() async throws {
        var sandbox = Sandbox(name: "k3sp-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let apiPort = Self.freePort()
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1)
        let plan = try String(contentsOfFile: sandbox.planPath, encoding: .utf8)
        try plan.replacingOccurrences(of: "\n  rollout_timeout:", with: "\n  api_access: forward\n  api_local_port: \(apiPort)\n  rollout_timeout:")
            .write(toFile: sandbox.planPath, atomically: true, encoding: .utf8)

        // Nothing recorded yet; and a plan that is not K3s: each says what to do.
        let early = try await K3sSandbox.run(sandbox, ["port-forward", "prometheus"])
        #expect(early.code == 2 && early.stderr.contains("no runs yet") && early.stderr.contains("provision up"), "\(early.stderr)")
        let other = sandbox.cli.write("none.yaml", "name: \(sandbox.name)-none\ntarget: sandbox\nruntime: none\ncluster: {worker_count: 1}\n")
        let notK3s = try await sandbox.cli.run(["port-forward", "grafana", "--plan", other])
        #expect(notK3s.code == 2 && notK3s.stderr.contains("runtime: k3s"), "\(notK3s.stderr)")

        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        let address = nodes.address

        // api_access: forward: the kubeconfig's server is the local end of 'port-forward api'.
        let kubeconfig = try String(contentsOf: sandbox.stateDirectory.appendingPathComponent("kubeconfig"), encoding: .utf8)
        #expect(Kubeconfig.has(kubeconfig, context: sandbox.name, server: "https://127.0.0.1:\(apiPort)"), "\(kubeconfig)")
        let path = try await K3sSandbox.run(sandbox, ["kubeconfig"])
        #expect(path.code == 0 && path.stderr.contains("provision port-forward api"), "\(path.stderr)")

        // The Service does not exist yet.
        let missing = try await K3sSandbox.run(sandbox, ["port-forward", "prometheus"])
        #expect(missing.code == 2 && missing.stderr.contains("no Service monitoring/kube-prometheus-stack-prometheus") && missing.stderr.contains("provision up"),
                "\(missing.stderr)")

        // A real HTTP server on the control plane, behind a Service whose cluster address is the node's.
        let marker = "served-by-the-control-plane-\(UUID().uuidString)"
        let service = """
            {"kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-prometheus-stack-prometheus", "namespace": "monitoring"},
              "spec": {"clusterIP": "\(address)", "ports": [{"name": "http-web", "port": 9090}]}}]}
            """
        let setUp = try await nodes.run("""
            mkdir -p /srv/www && echo \(marker) > /srv/www/index.html && cat > /tmp/svc.json <<'EOF'
            \(service)
            EOF
            k3s kubectl apply --server-side -f /tmp/svc.json && \
            (setsid nohup python3 -m http.server 9090 --bind \(address) --directory /srv/www >/tmp/http.log 2>&1 </dev/null &)
            """, on: nodes.control)
        #expect(setUp.succeeded, "\(setUp.stderr)")

        let prometheus = try sandbox.cli.start(["port-forward", "prometheus", "--json", "--plan", sandbox.planPath])
        let url = try await Self.url(of: prometheus)
        #expect(url.hasPrefix("http://127.0.0.1:"), "\(url)")
        var body = ""
        try await waitUntil(timeout: .seconds(30), every: .milliseconds(300)) {
            body = await SandboxNodes.get(url + "/index.html")?.1 ?? ""
            return body.contains(marker)
        }
        let localPort = try #require(url.split(separator: ":").last.flatMap { Int($0) }, "no port in \(url)")
        try await Self.stop(prometheus, with: SIGINT)
        #expect(!prometheus.signaled && prometheus.exitCode == 0, "\(prometheus.stderr)")
        #expect(!Self.accepts(port: localPort), "Ctrl-C closed the port")

        // port-forward api holds k3s.api_local_port; TLS verifies against the kubeconfig's CA at 127.0.0.1.
        let api = try sandbox.cli.start(["port-forward", "api", "--json", "--plan", sandbox.planPath])
        let apiURL = try await Self.url(of: api)
        #expect(apiURL == "https://127.0.0.1:\(apiPort)")
        let ca = sandbox.cli.directory.appendingPathComponent("ca.pem")
        let caData = try #require(kubeconfig.split(separator: "\n").first { $0.contains("certificate-authority-data:") }?.split(separator: " ").last)
        try #require(Data(base64Encoded: String(caData))).write(to: ca)
        let token = try await nodes.run("cat /var/lib/rancher/k3s/server/standin/admin-token", on: nodes.control).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let (status, readyz) = try Self.curl(["--cacert", ca.path, "-H", "Authorization: Bearer \(token)", apiURL + "/readyz"])
        #expect(status == 0 && readyz == "ok", "\(readyz)")
        try await Self.stop(api, with: SIGTERM)
        #expect(!api.signaled && api.exitCode == 0, "\(api.stderr)")
        #expect(!Self.accepts(port: apiPort))
        await nodes.pool.closeAll()
    }

    @Test func verifyOnK3sReachesPrometheusThroughAForwardReadsTopicsFromTheBrokerAndNamesK3sPlacesToLook() async throws {
        var sandbox = Sandbox(name: "k3sv-\(UInt16.random(in: 1000...65000))", workers: 1)
        defer { sandbox.cleanUp() }
        let tree = sandbox.cli.directory.appendingPathComponent("k8s")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("k8s"), to: tree)
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, rolloutTimeout: "30s")
        let up = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(up.code == 0, "\(up.failure)")
        let nodes = try SandboxNodes(sandbox)
        let address = nodes.address

        // A real Prometheus (scraping nothing) behind the Prometheus Service; the processor's and
        // Loki's Services lead to ports nothing listens on. The cluster addresses are the control plane's own.
        let services = """
            {"kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-prometheus-stack-prometheus", "namespace": "monitoring"},
              "spec": {"clusterIP": "\(address)", "ports": [{"name": "http-web", "port": 9090}]}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "processor", "namespace": "app"},
              "spec": {"clusterIP": "\(address)", "ports": [{"name": "http", "port": 8080}]}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "loki", "namespace": "monitoring"},
              "spec": {"clusterIP": "\(address)", "ports": [{"name": "http-metrics", "port": 3100}]}}]}
            """
        let setUp = try await nodes.run("""
            mkdir -p /tmp/prom && printf 'global: {scrape_interval: 5s}\\n' > /tmp/prom/prometheus.yml && cat > /tmp/services.json <<'EOF'
            \(services)
            EOF
            k3s kubectl apply --server-side -f /tmp/services.json && \
            (setsid nohup prometheus --config.file=/tmp/prom/prometheus.yml --storage.tsdb.path=/tmp/prom/data \
              --web.listen-address=\(address):9090 >/tmp/prom/log 2>&1 </dev/null &)
            """, on: nodes.control)
        #expect(setUp.succeeded, "\(setUp.stderr)")

        let verify = try await K3sSandbox.run(sandbox, ["verify", "--json", "--timeout", "20s"])  // the processor and Loki never come
        #expect(verify.code == 1, "\(verify.stderr.suffix(2000))")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any], "\(verify.stdout)")
        let checks = Dictionary(uniqueKeysWithValues: (object["checks"] as? [[String: Any]] ?? []).map { ($0["name"] as? String ?? "", $0) })
        let topics = try #require(checks["topics"])
        #expect(topics["ok"] as? Bool == true && topics["seen"] as? String == "gpu.metrics.v1 (3), token.usage.v1 (3), pipeline.deadletter.v1 (3)",
                "the plan's pipeline.partitions (default 3), written into the kafka-topics ConfigMap by the deploy: \(topics)")
        let alerts = try #require(checks["no critical alert firing"])
        #expect(alerts["ok"] as? Bool == true && alerts["seen"] as? String == "none", "the real Prometheus answered through the forward: \(alerts)")
        let scraped = try #require(checks["Prometheus scrapes every node"])
        #expect(scraped["ok"] as? Bool == false && scraped["expected"] as? String == "2 up" && scraped["seen"] as? String == "0 of 0 up", "\(scraped)")
        let health = try #require(checks["processor /health"])
        #expect(health["ok"] as? Bool == false && (health["next"] as? String ?? "").contains("k3s kubectl logs -n app deploy/processor"), "\(health)")
        let logs = try #require(checks["Loki has the processor's logs"], "the log check runs on K3s")
        #expect(logs["ok"] as? Bool == false && (logs["next"] as? String ?? "").contains("app.kubernetes.io/name=alloy"), "\(logs)")
        #expect(!verify.stdout.contains("Prometheus: http://"), "no sandbox URLs for a K3s plan")

        // The same checks as the last step of `up` (monitoring, then verify): it fails naming what to look at.
        sandbox.planPath = K3sSandbox.writePlan(sandbox, workers: 1, deploy: tree.path, rolloutTimeout: "30s", monitoring: true, verify: true)
        let failed = try await K3sSandbox.run(sandbox, ["up", "--json"])
        #expect(failed.code == 1, "\(failed.stderr.suffix(2000))")
        let events = failed.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let verifyFailed = try #require(events.last { $0["kind"] as? String == "step.failed" && $0["step"] as? String == "verify" }, "\(failed.stdout.suffix(2000))")
        let message = verifyFailed["message"] as? String ?? ""
        #expect(message.contains("the pipeline does not verify") && message.contains("processor /health") && message.contains("k3s kubectl logs -n app deploy/processor"), "\(message)")
        #expect(!message.contains("topics:"), "the topics pass through the step too: \(message)")
        let succeeded = Set(events.filter { $0["kind"] as? String == "step.succeeded" }.compactMap { $0["step"] as? String })
        #expect(succeeded.contains("monitoring"), "\(succeeded)")
        await nodes.pool.closeAll()
    }
}
