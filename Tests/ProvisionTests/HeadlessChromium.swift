import Foundation
import TestSupport
@testable import Engine

/// Headless Chromium (Debian's `chromium`, installed by scripts/bootstrap) rendering a local page:
/// a PNG screenshot, what the page wrote to the console, the requests it made, and its DOM after loading.
struct HeadlessChromium {
    static let executable = "/usr/bin/chromium"

    /// What a page did while it was rendered.
    struct Page {
        /// The screenshot (empty when none was written).
        let png: Data
        /// Console messages of the page (errors, Content-Security-Policy violations), one per line.
        let console: [String]
        /// URLs the page itself asked the network for (the browser's own background requests are not counted).
        let requests: [String]
        /// The DOM after the page loaded (`--dump-dom`).
        let dom: String
    }

    let cli: CLI

    /// Renders `file` at `width`×`height`: once for a screenshot with console logging and a net log,
    /// once for the DOM. Nothing resolves (`MAP * ~NOTFOUND`), so no request can leave this machine.
    func render(_ file: URL, width: Int = 1000, height: Int = 2400) async throws -> Page {
        let directory = cli.directory.appendingPathComponent("chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let png = directory.appendingPathComponent("page.png")
        let netLog = directory.appendingPathComponent("net.json")
        let common = [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=\(directory.appendingPathComponent("profile").path)",
        ]
        let shot = try await run(common + ["--enable-logging=stderr", "--v=0", "--log-net-log=\(netLog.path)",
                                           "--screenshot=\(png.path)", "--window-size=\(width),\(height)", file.absoluteString])
        guard shot.code == 0 else { throw StepFailure("chromium --screenshot exited \(shot.code): \(shot.stderr.suffix(2000))") }
        let dump = try await run(common + ["--dump-dom", file.absoluteString])
        guard dump.code == 0 else { throw StepFailure("chromium --dump-dom exited \(dump.code): \(dump.stderr.suffix(2000))") }
        return Page(png: (try? Data(contentsOf: png)) ?? Data(),
                    console: shot.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init),
                    requests: Self.pageRequests(netLog), dom: dump.stdout)
    }

    /// URL requests whose network isolation key is the local page's (`file://`): the page's own.
    static func pageRequests(_ netLog: URL) -> [String] {
        guard let data = try? Data(contentsOf: netLog),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let events = object["events"] as? [[String: Any]] else { return ["(no readable net log at \(netLog.path))"] }
        return events.compactMap { event in
            guard let params = event["params"] as? [String: Any], let url = params["url"] as? String,
                  (params["network_isolation_key"] as? String)?.contains("file://") == true else { return nil }
            return url
        }
    }

    /// Runs chromium in the test's directory without blocking a cooperative thread.
    private func run(_ arguments: [String]) async throws -> CLI.Result {
        let process = try cli.start(arguments, executable: Self.executable)
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                kill(process.pid, SIGKILL)
                process.wait()
                throw StepFailure("chromium did not finish within 60 s")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return CLI.Result(code: process.exitCode, stdout: process.stdout, stderr: process.stderr, signaled: process.signaled)
    }

    /// `<tag …>` elements of `dom` whose opening tag contains `marker`, as their opening tags.
    static func elements(_ tag: String, containing marker: String, in dom: String) -> [Substring] {
        dom.components(separatedBy: "<\(tag) ").dropFirst().compactMap { rest in
            let open = rest.prefix { $0 != ">" }
            return open.contains(marker) ? open : nil
        }
    }
}
