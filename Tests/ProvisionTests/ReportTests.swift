@testable import App
@testable import Engine
import Foundation
import TestSupport
import Testing
@testable import Verification

/// `provision report` on exec-only plans, through the real binary: what a run did, marked on its
/// timeline, in a page that headless Chromium renders without a console error or a request.
@Suite struct ReportTests {
    /// `flaky` fails once then succeeds, `broken` fails for good, `after` is skipped because of it,
    /// and `node.prepare` fans out to three children.
    static func plan(flag: String) -> String {
        """
        name: troubled
        steps:
          - id: first
            exec:
              run: rm -f \(flag) && printf 'a\\nb\\nc\\n'
          - id: node.prepare
            for_each: {step: first, output: lines}
            exec:
              run: echo {{item}}
          - id: flaky
            needs: [first]
            retry: {attempts: 3, backoff: 100ms}
            exec:
              run: if [ -f \(flag) ]; then echo ok; else touch \(flag); echo "not yet" >&2; exit 1; fi
          - id: broken
            needs: [first]
            exec:
              run: echo "disk on fire" >&2; exit 3
          - id: after
            needs: [broken, flaky, node.prepare]
            exec:
              run: echo never
        """
    }

    @Test func aRetriedAndAFailedStepAreBothMarkedOnTheTimelineOfAPageChromiumRendersWithoutErrorsOrRequests() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("troubled.yaml", Self.plan(flag: cli.directory.appendingPathComponent("flag").path))
        let up = try await cli.run(["up", "--plan", plan])
        #expect(up.code == 1, "broken fails the run: \(up.stderr)")

        let report = try await cli.run(["report", "--plan", plan])
        #expect(report.code == 0, "\(report.stderr)")
        let file = URL(fileURLWithPath: report.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(file.path == URL(fileURLWithPath: cli.stateRoot).appendingPathComponent("troubled/report-run-1.html").path)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "readable by its owner only, like every state file")

        let page = try await HeadlessChromium(cli: cli).render(file)
        #expect(page.png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG was written")
        #expect(page.console.isEmpty, "no console message (error or CSP violation): \(page.console)")
        #expect(page.requests.isEmpty, "the page requested nothing: \(page.requests)")

        let bars = HeadlessChromium.elements("rect", containing: "data-step=", in: page.dom)
        #expect(bars.count == 7, "one bar per step: first, three node.prepare children, flaky, broken, after: \(bars)")
        let flaky = try #require(bars.first { $0.contains("data-step=\"flaky\"") })
        #expect(flaky.contains("data-retries=\"1\"") && flaky.contains("data-attempts=\"2\"") && flaky.contains("data-outcome=\"succeeded\""))
        let broken = try #require(bars.first { $0.contains("data-step=\"broken\"") })
        #expect(broken.contains("bar failed") && broken.contains("data-outcome=\"failed\""))
        #expect(page.dom.contains("↻2"), "the retried bar carries its attempt count")
        #expect(page.dom.contains("<li class=\"retried\"><b>flaky</b> succeeded after 1 retry: run command exit code 1: not yet"))
        #expect(page.dom.contains("<li class=\"failed\"><b>broken</b> failed after 1 attempt(s): run command exit code 3: disk on fire"))
        #expect(page.dom.contains(">node.prepare</text>"), "the fan-out's children are grouped under its id")

        let json = try await cli.run(["report", "--plan", plan, "--json"])
        #expect(json.code == 0)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let document = try decoder.decode(ReportDocument.self, from: Data(json.stdout.utf8))
        #expect(document.status == "failed")
        #expect(Set(document.timeline.bars.map(\.step)) == ["first", "node.prepare/a", "node.prepare/b", "node.prepare/c", "flaky", "broken", "after"])
        let groups = document.timeline.bars.map(\.group)
        #expect(groups.firstIndex(of: "node.prepare").map { groups[$0..<($0 + 3)].allSatisfy { $0 == "node.prepare" } } == true, "a fan-out's children are together")
        #expect(document.timeline.bars.first { $0.step == "after" }?.outcome == "skipped")
        #expect(document.charts.isEmpty && document.objectives.isEmpty, "an exec-only plan has no pipeline to chart")
    }

    @Test func aRunTheStoreDoesNotHaveIsAUsageErrorNamingTheRunsThereAre() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("one.yaml", "name: one\nsteps:\n  - id: a\n    exec:\n      run: echo a\n")
        let none = try await cli.run(["report", "--plan", plan])
        #expect(none.code == 2)
        #expect(none.stderr.contains("has no runs yet; start one with 'provision up'"), "\(none.stderr)")
        #expect(try await cli.run(["up", "--plan", plan]).code == 0)
        let missing = try await cli.run(["report", "--plan", plan, "--run", "7"])
        #expect(missing.code == 2)
        #expect(missing.stderr.contains("has no run 7; its runs are 1 to 1"), "\(missing.stderr)")
        let output = cli.directory.appendingPathComponent("r.html").path
        let written = try await cli.run(["report", "--plan", plan, "--run", "1", "--output", output])
        #expect(written.code == 0 && written.stdout.contains(output))
        #expect(FileManager.default.contents(atPath: output).map { String(decoding: $0, as: UTF8.self).contains("Content-Security-Policy") } == true)
    }
}
