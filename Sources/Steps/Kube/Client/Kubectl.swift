import Engine
import Foundation
import JSON
import Transport

/// The typed Kubernetes client of the K3s steps: `k3s kubectl` on a node (the control plane),
/// through the node's command runner, one method per verb provision uses. No other code builds a
/// kubectl command line: callers name resources, namespaces and files; the arguments are quoted
/// here.
///
/// A call that fails with a transient API error (`KubectlError.transient`: the API server
/// restarting, "etcdserver: leader changed", a timeout) is retried, with a growing pause, until
/// `deadline` (the step's own deadline, or `patience` from now); an answer about the request
/// (NotFound, a validation error) is returned at once. After the deadline the last result is
/// returned, so the caller's error names the last error the API gave. Reads return the result for
/// the caller to judge; changes throw `failure(what, result)` unless they succeed.
package struct Kubectl: Sendable {
    /// How long a call without a deadline of its step keeps retrying transient errors.
    static let patience: Duration = .seconds(60)
    /// The first pause between tries, doubled up to `maxPause`.
    static let firstPause: Duration = .milliseconds(500)
    static let maxPause: Duration = .seconds(4)
    /// The field manager of provision's server-side applies.
    static let fieldManager = "provision"

    /// Where kubectl runs.
    let node: K3sNode
    /// Transient errors are retried until then.
    let deadline: ContinuousClock.Instant

    // MARK: Reading

    /// `get RESOURCES -o json` (in `namespace`, matching `selector`): one object when one resource
    /// is named (`configmap/x`), else a `List` (`pods`, or several names).
    package func get(_ resources: [String], namespace: String? = nil, selector: String? = nil, timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await call(["get"] + resources + scope(namespace) + (selector.map { ["-l", $0] } ?? []) + ["-o", "json"], timeout: timeout)
    }

    /// `get` decoded as `T`; fails naming `what` when the call fails or the answer is no `T`.
    func read<T: Decodable>(_ type: T.Type, _ resources: [String], namespace: String? = nil, what: String) async throws -> T {
        let result = try await get(resources, namespace: namespace)
        guard result.succeeded else { throw failure(what, result) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(result.stdout.utf8))
        } catch {
            throw StepFailure("\(what) on \(node.name): the API's answer is not what was asked for (\(error)): \(result.stdout.prefix(300))")
        }
    }

    /// `get RESOURCES -o name`: succeeds when every one exists.
    func names(_ resources: [String], namespace: String? = nil) async throws -> CommandResult {
        try await call(["get"] + resources + scope(namespace) + ["-o", "name"], timeout: .seconds(30))
    }

    /// `get --raw PATH` (the API server's own endpoints: `/readyz`).
    func raw(_ path: String, timeout: Duration = .seconds(20)) async throws -> CommandResult {
        try await call(["get", "--raw", path], timeout: timeout)
    }

    /// `logs TARGET` (a pod, or `job/NAME`) of `container`, its last `tail` lines.
    func logs(_ target: String, namespace: String, container: String? = nil, tail: Int) async throws -> CommandResult {
        try await call(["logs", target, "-n", namespace] + (container.map { ["-c", $0] } ?? []) + ["--tail=\(tail)"], timeout: .seconds(30))
    }

    /// `exec POD -- COMMAND` in `namespace`.
    package func exec(_ pod: String, namespace: String, _ command: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await call(["exec", pod, "-n", namespace, "--"] + command, timeout: timeout)
    }

    // MARK: Changing

    /// `apply --server-side` of `files` (on the node) as `fieldManager`; `forceConflicts` takes
    /// fields another manager owns. Fails naming `what` unless it succeeds.
    @discardableResult
    func apply(_ files: [String], fieldManager: String = Kubectl.fieldManager, forceConflicts: Bool = false, what: String,
               timeout: Duration = .seconds(120)) async throws -> CommandResult {
        try await must(["apply", "--server-side", "--field-manager=\(fieldManager)"] + (forceConflicts ? ["--force-conflicts"] : [])
                       + files.flatMap { ["-f", $0] }, what, timeout: timeout)
    }

    /// A JSON merge patch of `resource` (`configmap/x`, `deployment/y`) as `fieldManager`.
    func mergePatch(_ resource: String, namespace: String, _ patch: JSONValue, fieldManager: String, what: String) async throws {
        try await must(["patch", resource, "-n", namespace, "--type=merge", "--patch=\(String(decoding: patch.compactData, as: UTF8.self))",
                        "--field-manager=\(fieldManager)"], what, timeout: .seconds(60))
    }

    /// `delete TYPE NAME` (in `namespace`; TYPE as `deployment.apps`, `node`); with
    /// `ignoreNotFound`, one already gone is no error.
    func delete(_ type: String, _ name: String, namespace: String? = nil, ignoreNotFound: Bool = false, what: String,
                timeout: Duration = .seconds(120)) async throws {
        try await must(["delete", type, name] + scope(namespace) + (ignoreNotFound ? ["--ignore-not-found"] : []), what, timeout: timeout)
    }

    /// How a node is taken out of service and put back, on the node that runs kubectl: `marker`,
    /// the file that says the node is taken out, and `lock` (flock), held by every cordon, drain
    /// and uncordon. The cordon writes the marker first, in the same command; the uncordon removes
    /// it after, in the same command; a drain runs only if the marker exists once it holds the lock
    /// (else it fails, exit 3, having done nothing). A remote command outlives the run that sent
    /// it, so these pairs cannot be split by a killed run, and a drain that a killed run sent as it
    /// died, reaching the node after a later run has put the node back, finds no marker instead of
    /// cordoning the node again.
    struct TakeOut: Sendable {
        /// The lock file on the node.
        let lock: String
        /// The file that says this node is taken out.
        let marker: String

        /// `script` under the lock.
        fileprivate func locked(_ script: String) -> String {
            "flock \(Shell.quoted(lock)) sh -c \(Shell.quoted(script))"
        }

        fileprivate func cordon(_ name: String) -> String {
            let folder = (marker as NSString).deletingLastPathComponent
            return locked("mkdir -p \(Shell.quoted(folder)) && touch \(Shell.quoted(marker)) && exec \(Kubectl.commandLine(["cordon", name]))")
        }

        fileprivate func uncordon(_ name: String) -> String {
            locked("\(Kubectl.commandLine(["uncordon", name])) && rm -f \(Shell.quoted(marker))")
        }

        fileprivate func drain(_ arguments: [String]) -> String {
            let missing = Shell.quoted("no \(marker): the node is not taken out (put back since?); nothing drained")
            return locked("[ -e \(Shell.quoted(marker)) ] || { echo \(missing) >&2; exit 3; }; exec \(Kubectl.commandLine(arguments))")
        }
    }

    /// Writes `takeOut`'s marker and marks Node `name` unschedulable.
    func cordon(_ name: String, _ takeOut: TakeOut) async throws {
        let result = try await retried(takeOut.cordon(name), timeout: .seconds(60))
        guard result.succeeded else { throw failure("cordoning \(name)", result) }
    }

    /// Marks Node `name` schedulable again and removes `takeOut`'s marker.
    func uncordon(_ name: String, _ takeOut: TakeOut) async throws {
        let result = try await retried(takeOut.uncordon(name), timeout: .seconds(60))
        guard result.succeeded else { throw failure("uncordoning \(name)", result) }
    }

    /// `drain NAME --ignore-daemonsets --delete-emptydir-data --timeout=…`, while `takeOut`'s
    /// marker exists (a drain a killed run left running is waited for by the lock, never run
    /// beside another). Transient API errors are tried again for `timeout` and a minute more. The
    /// result is the caller's to judge: a drain that a PodDisruptionBudget blocks fails with the
    /// pods it named.
    func drain(_ name: String, timeout: Duration, _ takeOut: TakeOut) async throws -> CommandResult {
        let seconds = max(1, Int(timeout.components.seconds))
        let command = takeOut.drain(["drain", name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=\(seconds)s"])
        return try await Self.retrying(until: .now + timeout + .seconds(60)) { try await node.run(command, timeout: timeout * 2 + .seconds(60)) }
    }

    // MARK: Here

    /// `kubectl kustomize OVERLAY` on this machine (no cluster involved): the overlay's YAML, or
    /// a failure naming the overlay.
    static func kustomize(_ overlay: URL, runner: LocalCommandRunner) async throws -> String {
        let result = try await runner.run(ProcessCommand("kubectl", ["kustomize", overlay.path], environment: ProcessInfo.processInfo.environment), timeout: .seconds(120))
        guard result.succeeded else {
            throw StepFailure("'kubectl kustomize \(overlay.path)' failed (\(result.summary)): \(result.stderr.suffix(800))", retryable: false)
        }
        return result.stdout
    }

    // MARK: The command line

    /// A command a person may run on the control plane, as hints and errors show it:
    /// `shown("logs -n app deploy/processor")` is `'k3s kubectl logs -n app deploy/processor'`.
    /// Hints name commands through this, so that no other code spells a kubectl command line.
    package static func shown(_ arguments: String) -> String {
        "'k3s kubectl \(arguments)'"
    }

    /// `arguments` as the command line on the node (each quoted for sh).
    static func commandLine(_ arguments: [String]) -> String {
        "k3s kubectl " + arguments.map { $0.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,".contains($0) } ? $0 : Shell.quoted($0) }.joined(separator: " ")
    }

    private func scope(_ namespace: String?) -> [String] {
        namespace.map { $0.isEmpty ? [] : ["-n", $0] } ?? []
    }

    /// Runs `k3s kubectl ARGUMENTS`; retries transient failures until the deadline.
    private func call(_ arguments: [String], timeout: Duration) async throws -> CommandResult {
        try await retried(Self.commandLine(arguments), timeout: timeout)
    }

    /// Runs `command` (a kubectl command line built here) as root; retries transient failures until the deadline.
    private func retried(_ command: String, timeout: Duration) async throws -> CommandResult {
        try await Self.retrying(until: deadline) { try await node.run(command, timeout: timeout) }
    }

    /// `call`, failing with `what` and the last error unless it exits 0.
    @discardableResult
    private func must(_ arguments: [String], _ what: String, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        let result = try await call(arguments, timeout: timeout)
        guard result.succeeded else { throw failure(what, result) }
        return result
    }

    /// Runs `attempt` again after transient API errors, with a growing pause, until `deadline`;
    /// returns the last try's result.
    private static func retrying(until deadline: ContinuousClock.Instant, _ attempt: () async throws -> CommandResult) async throws -> CommandResult {
        var pause = firstPause
        while true {
            let result = try await attempt()
            guard !result.succeeded, KubectlError(stderr: result.stderr) == .transient, ContinuousClock.now + pause < deadline else { return result }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, maxPause)
        }
    }

    /// The error for a call that failed: what it did, the last error, and for an API that stayed
    /// unavailable where to look.
    func failure(_ what: String, _ result: CommandResult) -> StepFailure {
        let error = (String(result.stderr.suffix(600)) + String(result.stdout.suffix(300))).trimmingCharacters(in: .whitespacesAndNewlines)
        guard KubectlError(stderr: result.stderr) == .transient else {
            return StepFailure("\(what) on \(node.name) failed (\(result.summary)): \(error)")
        }
        return StepFailure("""
            \(what) on \(node.name) failed: the API server did not answer before the step's deadline; its last error: \(error)
              check the K3s server on \(node.name) (\(Self.shown("get --raw /readyz")); its log: 'journalctl -u k3s' under systemd, \
            /var/log/k3s.log under OpenRC), then run 'provision up'
            """)
    }
}
