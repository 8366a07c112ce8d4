import App
import ArgumentParser
import Foundation
import JSON
import Kube
import Transport
import Verification

/// `provision port-forward`: a local port to a monitoring Service or the K3s API, through SSH.
struct PortForwardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port-forward",
        abstract: "Forward a local port to Grafana, Prometheus, Alertmanager or the K3s API (runtime: k3s).",
        discussion: """
            Listens on 127.0.0.1 and carries each connection through one SSH session to the control plane \
            (its host key pinned like every other) to the Service's cluster address in namespace \
            'monitoring' (kube-prometheus-stack-grafana :80, -prometheus :9090, -alertmanager :9093), or for \
            'api' to the K3s API server on the control plane's private address :6443. Prints the local URL \
            (--json: {"url": ...}) and holds it until Ctrl-C or SIGTERM (exit 0, port closed).

              provision port-forward prometheus    http://127.0.0.1:<a free port>
              provision port-forward api           https://127.0.0.1:<k3s.api_local_port>

            The second is the server of a kubeconfig with 'k3s.api_access: forward'.
            """
    )

    @Argument(help: "What to reach: grafana, prometheus, alertmanager or api.")
    var target: String

    @Option(help: "The local port (0 picks a free one). Default: k3s.api_local_port for api, a free port otherwise.")
    var port: Int?

    @OptionGroup var options: GlobalOptions

    func validate() throws {
        guard ForwardTarget(rawValue: target) != nil else {
            throw ValidationError("unknown target '\(target)': choose one of \(ForwardTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be from 0 to 65535, got \(port)") }
    }

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let workspace = try options.workspace(storedPlanIfMissing: true)
            let open: OpenForward
            do {
                open = try await workspace.openPortForward(ForwardTarget(rawValue: target)!, localPort: port)
            } catch let error as PipelineUnavailable {
                throw ValidationError(error.description)
            }
            let stop = StopFlag()
            let trap = SignalTrap { _ in
                stop.set()
                open.forward.close()
            }
            if options.json {
                let data = JSONValue.object(["url": .string(open.url), "target": .string(open.target), "reaches": .string(open.what)]).compactData
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            } else {
                FileHandle.standardOutput.write(Data("\(open.url)\n".utf8))
                FileHandle.standardError.write(Data("forwarding \(open.url) to \(open.what) (\(open.target)) through SSH to \(open.forward.endpoint.name); Ctrl-C stops\n".utf8))
            }
            let failure = await open.forward.stopped()
            trap.cancel()
            if let failure, !stop.isSet {
                throw PortForwardError(description: "port-forward stopped: \(failure); run 'provision port-forward \(target)' again")
            }
        }
    }
}

/// Set once, from a signal handler's queue.
private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
