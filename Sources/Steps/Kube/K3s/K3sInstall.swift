import Digest
import Engine
import Foundation
import NodeRuntime
import Transport

/// Runs K3s's install script on a node, the way both K3s steps do: with the airgap files in place
/// (uploads skipped when the node has the same digest), its environment in a 0600 file that the
/// run consumes (a token never appears on a command line), detached from the SSH session and
/// under a deadline.
///
/// Detached because the script can block for ever (an agent that cannot join) and because
/// `provision` may die while it runs: the next attempt finds the install still running and waits
/// for it instead of starting a second one, so an interrupted join installs once.
package struct K3sInstall: Sendable {
    /// Where provision keeps its files on a node.
    static let directory = "/var/lib/provision/k3s"
    /// The install script on the node.
    static let script = "\(directory)/install.sh"
    /// The script's own output.
    static let log = "\(directory)/install.log"

    /// `airgap` files here, resolved.
    let airgap: (installScript: URL, binary: URL, images: URL?)?
    /// The pinned version.
    let version: String
    /// Without `airgap`: the install script's download, pinned by the release's tag and by digest.
    let download: InstallerDownload

    init(airgap: (installScript: URL, binary: URL, images: URL?)?, version: String, installScriptSHA256: String? = nil,
         installScriptURL: String? = nil) {
        self.airgap = airgap
        self.version = version
        download = InstallerDownload(url: installScriptURL ?? InstallerDownload.url(version: version), expected: installScriptSHA256)
    }

    /// What the install would put on a node, as one digest: a node whose recorded digest equals it
    /// (and whose check passes) needs no install.
    func digest(exec: String, extraEnvironment: [String: String]) -> String {
        var parts = [version, exec] + (download.expected.map { ["installer=\($0)"] } ?? []) + extraEnvironment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if let airgap {
            parts += [airgap.installScript, airgap.binary].map { Self.fileStamp($0) } + [airgap.images.map(Self.fileStamp) ?? ""]
        }
        return SHA256.hex(parts.joined(separator: "\u{0}"))
    }

    /// Size and modification time (cheap; a rebuilt file changes them).
    static func fileStamp(_ url: URL) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        return "\(url.path) \(attributes?[.size] ?? "missing") \((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
    }

    /// Puts the airgap files on `node` (skipping those it already has) and checks that the binary
    /// is the pinned version. Without airgap, downloads K3s's install script of the pinned release on
    /// the node and puts it where it runs only if its sha256 is `k3s.install_script_sha256`.
    func prepare(_ node: K3sNode, _ context: StepContext) async throws {
        let log = context.log
        guard let airgap else {
            let result = try await node.run(download.command(to: Self.script), timeout: .seconds(120))
            if let failure = download.failure(status: result.exitStatus, output: result.stdout + result.stderr, node: node.name) { throw failure }
            log.write("\(node.name): K3s's install script from \(download.url), sha256 \(download.expected ?? "") as pinned")
            return
        }
        var files: [(URL, String, Int32)] = [(airgap.binary, "/usr/local/bin/k3s", 0o755), (airgap.installScript, Self.script, 0o700)]
        if let images = airgap.images { files.append((images, "/var/lib/rancher/k3s/agent/images/\(images.lastPathComponent)", 0o644)) }
        // One command reads the node's digests, one places what differs (besides the uploads).
        let present = try await node.digests(of: files.map(\.1))
        var placements: [K3sNode.Placement] = []
        var uploaded: [String] = []
        for (local, remote, mode) in files {
            if try await Artifact(local: local.path, remote: remote, mode: mode).localDigest(LocalCommandRunner(context)) == present[remote] {
                log.write("\(node.name): \(remote) is already this file")
                continue
            }
            placements.append(K3sNode.Placement(data: try Data(contentsOf: local), path: remote, mode: mode))
            uploaded.append("\(node.name): uploaded \(local.lastPathComponent) to \(remote)")
        }
        try await node.put(placements)
        uploaded.forEach(log.write)
        let reported = try await K3sAccess.installedVersion(on: node)
        guard reported == version else {
            throw StepFailure("""
                the airgap binary \(airgap.binary.path) is K3s \(reported.isEmpty ? "(no version: 'k3s --version' answered nothing)" : reported), \
                but k3s.version pins \(version): give k3s.airgap.binary of the pinned release, or pin \(reported.isEmpty ? "its version" : reported)
                """, retryable: false)
        }
    }

    /// How an install ended.
    enum Outcome: Sendable, Equatable {
        /// The script exited 0.
        case finished
        /// It exited otherwise; the last lines of its output.
        case failed(status: Int, output: String)
        /// It was still running at the deadline (and was stopped).
        case timedOut
    }

    /// Runs the install script on `node` with `environment`, or waits for the one a previous
    /// attempt left running, until `deadline`.
    /// - Parameter record: written to `recordPath` on the node when the script succeeds, in the
    ///   same detached run, so an install that finished while provision was gone is known.
    func run(on node: K3sNode, environment: [String: String], record: (digest: String, path: String), deadline: ContinuousClock.Instant,
             log: StepLog) async throws -> Outcome {
        let dir = Self.directory
        let running = "[ -f \(dir)/install.pid ] && kill -0 \"$(cat \(dir)/install.pid)\" 2>/dev/null"
        if try await node.run(running, timeout: .seconds(20)).succeeded {
            log.write("\(node.name): an install started by an earlier attempt is still running; waiting for it instead of starting another")
        } else {
            let env = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(Shell.quoted($0.value))" }.joined(separator: "\n") + "\n"
            try await node.put(Data(env.utf8), at: "\(dir)/install.env", mode: 0o600)
            let seconds = max(1, Int((deadline - .now).components.seconds))
            // The script runs in its own session: `timeout` bounds it on the node even if provision
            // is gone; its exit status lands in install.rc.
            let body = "echo $$ > \(dir)/install.pid; set -a; . \(dir)/install.env; set +a; rm -f \(dir)/install.env; "
                + "timeout -k 5 \(seconds) sh \(Self.script) > \(Self.log) 2>&1; rc=$?; "
                + "if [ $rc = 0 ]; then echo \(record.digest) > \(record.path); fi; echo $rc > \(dir)/install.rc.tmp; mv \(dir)/install.rc.tmp \(dir)/install.rc"
            try await node.must("rm -f \(dir)/install.rc; setsid sh -c \(Shell.quoted(body)) </dev/null >/dev/null 2>&1 &", "starting the install")
            log.write("\(node.name): running the install script (\(environment["INSTALL_K3S_EXEC"] ?? "")), deadline \(seconds)s")
        }
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            // The node waits for the exit status itself (asking its file every 0.2 s, for up to 10
            // s a command), so the end is seen within 0.2 s and costs one round trip.
            let ticks = max(1, min(50, Int((deadline - .now).components.seconds) * 5))
            let wait = "i=0; while [ ! -f \(dir)/install.rc ] && [ $i -lt \(ticks) ]; do sleep 0.2; i=$((i+1)); done; "
                + "cat \(dir)/install.rc 2>/dev/null && rm -f \(dir)/install.pid"
            let rc = try await node.run(wait, timeout: .seconds(30)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if let status = Int(rc) {
                switch status {
                case 0: return .finished
                case 124, 137: return .timedOut
                default: return .failed(status: status, output: try await node.run("tail -n 15 \(Self.log)", timeout: .seconds(20)).stdout)
                }
            }
        }
        _ = try await node.run("pkill -TERM -s \"$(cat \(dir)/install.pid)\" 2>/dev/null; rm -f \(dir)/install.pid", timeout: .seconds(20))
        return .timedOut
    }
}
