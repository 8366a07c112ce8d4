@testable import App
import Engine
import Foundation
@testable import Kube
import Testing

/// The online install's download of K3s's install script, run as the node runs it (the same shell
/// command, with the real curl and sha256sum) against the K3s stand-in's install script served over
/// loopback by a real HTTP server: the script is put where it runs only when its sha256 is the
/// pinned one; a wrong digest or none deletes it and fails naming the URL and both digests.
@Suite(.serialized) struct InstallerDownloadTests {
    /// A Python HTTP server on 127.0.0.1 serving Tests/K3sStandIn, stopped by PID when done.
    final class Server {
        let process = Process()
        let port: Int

        init() throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                                 "--directory", repositoryRoot.appendingPathComponent("Tests/K3sStandIn").path]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            // "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ..."
            var seen = ""
            while !seen.contains("\n") {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            guard let match = seen.range(of: #"port ([0-9]+)"#, options: .regularExpression),
                  let port = Int(seen[match].dropFirst(5)) else {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw StepFailure("the HTTP server did not say its port: \(seen)")
            }
            self.port = port
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }  // SIGTERM may be ignored: the test runner passes its ignored signals on
            process.waitUntilExit()
        }
    }

    /// Runs `download`'s command for `path` here, as the node's shell would; its exit status and output.
    static func run(_ download: InstallerDownload, to path: String = "", shell: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", shell ?? download.command(to: path)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    static let script = repositoryRoot.appendingPathComponent("Tests/K3sStandIn/install.sh")

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("installer-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func thePinnedDigestPutsTheScriptInPlaceAndAnyOtherDeletesItAndFailsNamingBoth() throws {
        let server = try Server()
        let bytes = try Data(contentsOf: Self.script)
        let digest = try Self.run(InstallerDownload(url: "", expected: nil), shell: "sha256sum \(Self.script.path) | cut -d' ' -f1").output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(InstallerDownload.isDigest(digest))
        let url = "http://127.0.0.1:\(server.port)/install.sh"
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("k3s/install.sh").path

        // The pinned digest: in place, 0700, nothing left beside it.
        let pinned = InstallerDownload(url: url, expected: digest.uppercased())
        let good = try Self.run(pinned, to: path)
        #expect(good.status == 0, "\(good.output)")
        #expect(pinned.failure(status: good.status, output: good.output, node: "cp-1") == nil)
        #expect(FileManager.default.contents(atPath: path) == bytes)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        #expect(!FileManager.default.fileExists(atPath: path + ".download"))

        // Another digest: deleted, the installed one untouched, the failure names the URL and both digests.
        try FileManager.default.removeItem(atPath: path)
        let other = String(repeating: "0", count: 64)
        let wrong = InstallerDownload(url: url, expected: other)
        let bad = try Self.run(wrong, to: path)
        #expect(bad.status == 3, "\(bad.output)")
        #expect(!FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + ".download"), "a download that does not match never stays")
        let failure = try #require(wrong.failure(status: bad.status, output: bad.output, node: "cp-1"))
        #expect(!failure.retryable)
        #expect(failure.message.contains(url) && failure.message.contains("has sha256 \(digest)") && failure.message.contains("pins \(other)"), "\(failure.message)")
        #expect(failure.message.contains("deleted, not run"))

        // No digest pinned: nothing runs, and the failure says what to pin after checking it.
        let unpinned = InstallerDownload(url: url, expected: nil)
        let none = try Self.run(unpinned, to: path)
        #expect(none.status == 3 && !FileManager.default.fileExists(atPath: path))
        let refusal = try #require(unpinned.failure(status: none.status, output: none.output, node: "cp-1"))
        #expect(!refusal.retryable && refusal.message.contains("not pinned by digest") && refusal.message.contains("k3s.install_script_sha256: \(digest)"),
                "\(refusal.message)")

        // A download that fails (nothing at that URL) says so.
        let missing = InstallerDownload(url: "http://127.0.0.1:\(server.port)/no-such-install.sh", expected: digest)
        let gone = try Self.run(missing, to: path)
        #expect(gone.status == 4 && !FileManager.default.fileExists(atPath: path))
        #expect(missing.failure(status: gone.status, output: gone.output, node: "cp-1")?.message.contains("downloading K3s's install script from") == true)
    }

    @Test func theScriptComesFromThePinnedReleasesTag() {
        #expect(InstallerDownload.url(version: "v1.37.1+k3s1") == "https://raw.githubusercontent.com/k3s-io/k3s/v1.37.1%2Bk3s1/install.sh")
        let install = K3sInstall(airgap: nil, version: "v1.37.1+k3s1", installScriptSHA256: String(repeating: "a", count: 64))
        #expect(install.download.url.contains("/v1.37.1%2Bk3s1/") && !install.download.command(to: K3sInstall.script).contains("get.k3s.io"))
        #expect(install.digest(exec: "server", extraEnvironment: [:]) != K3sInstall(airgap: nil, version: "v1.37.1+k3s1").digest(exec: "server", extraEnvironment: [:]),
                "a new pin is a new install")
        #expect(InstallerDownload.isDigest(String(repeating: "A", count: 64)) && !InstallerDownload.isDigest("abc") && !InstallerDownload.isDigest(String(repeating: "g", count: 64)))
    }
}
