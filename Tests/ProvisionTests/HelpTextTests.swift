import Foundation
import TestSupport
import Testing

/// Help texts wrap once: the argument parser re-wraps every paragraph to the terminal's width, so
/// a hard newline inside a paragraph leaves lines of one or two words. And docs/cli.md documents
/// every command the binary has, with its flags.
@Suite struct HelpTextTests {
    /// What `provision --experimental-dump-help` says about a command (the fields read here).
    struct CommandInfo: Decodable {
        struct Argument: Decodable {
            struct Name: Decodable {
                let kind: String
                let name: String
            }

            let kind: String
            let names: [Name]?
            let shouldDisplay: Bool
        }

        let commandName: String
        let abstract: String?
        let discussion: String?
        let arguments: [Argument]?
        let subcommands: [CommandInfo]?

        /// The long names (`--plan`) of the options and flags `--help` shows, less `--help` and `--version`.
        var longOptions: [String] {
            (arguments ?? []).filter { $0.shouldDisplay && $0.kind != "positional" }
                .flatMap { $0.names ?? [] }
                .filter { $0.kind == "long" && !["help", "version"].contains($0.name) }
                .map { "--\($0.name)" }
        }
    }

    struct ToolInfo: Decodable {
        let command: CommandInfo
    }

    /// The root command, as the real binary describes itself.
    static func root() async throws -> CommandInfo {
        let cli = CLI()
        defer { cli.cleanUp() }
        let dump = try await cli.run([CLI.binary, "--experimental-dump-help"], executable: "/usr/bin/env")
        #expect(dump.code == 0, "\(dump.stderr)")
        return try JSONDecoder().decode(ToolInfo.self, from: Data(dump.stdout.utf8)).command
    }

    /// A list item (`- x`, `* x`, `1. x`).
    static func isListItem(_ line: Substring) -> Bool {
        line.hasPrefix("- ") || line.hasPrefix("* ") || line.prefix(while: \.isNumber).count > 0
            && line.drop(while: \.isNumber).hasPrefix(". ")
    }

    /// A line of running text: not empty, not indented (an example), not a list item.
    static func isProse(_ line: Substring) -> Bool {
        !line.isEmpty && !line.hasPrefix(" ") && !isListItem(line)
    }

    /// The lines of `discussion` after which the same paragraph goes on on the next line: a prose
    /// line must be followed by an empty line or the end, a list item by no prose.
    static func hardNewlinesInsideParagraphs(_ discussion: String) -> [String] {
        let lines = discussion.split(separator: "\n", omittingEmptySubsequences: false)
        return zip(lines, lines.dropFirst()).compactMap { line, next in
            if isProse(line) && !next.isEmpty { return String(line) }
            if isListItem(line) && isProse(next) { return String(line) }
            return nil
        }
    }

    @Test func theCheckFindsAParagraphWrappedByHandAndAcceptsExamplesAndLists() {
        #expect(Self.hardNewlinesInsideParagraphs("Progress is recorded in SQLite under\nthe state directory.") == [
            "Progress is recorded in SQLite under",
        ])
        #expect(Self.hardNewlinesInsideParagraphs("- one item\nwrapped by hand") == ["- one item"])
        #expect(Self.hardNewlinesInsideParagraphs("""
            One paragraph on one line.

              provision up
              provision down

            - an item
            - another item

            The end.
            """).isEmpty)
    }

    @Test func everyHelpTextHasNoHardNewlineInsideAParagraph() async throws {
        let root = try await Self.root()
        let subcommands = root.subcommands ?? []
        #expect(subcommands.count >= 14, "\(subcommands.map(\.commandName))")
        for command in [root] + subcommands {
            let name = command.commandName
            #expect(!(command.abstract ?? "").contains("\n"), "\(name): the abstract is one line")
            let broken = Self.hardNewlinesInsideParagraphs(command.discussion ?? "")
            #expect(broken.isEmpty, "\(name): a paragraph goes on after a newline at: \(broken)")
        }
    }

    /// At 80 columns each paragraph wraps once: no short line is followed by more of its paragraph,
    /// and every example line comes out as written (it fits, so the parser does not break it).
    @Test func everyHelpTextReadsWellAt80Columns() async throws {
        let root = try await Self.root()
        let cli = CLI()
        defer { cli.cleanUp() }
        for command in [root] + (root.subcommands ?? []) where command.discussion != nil {
            let name = command.commandName
            let arguments = command.commandName == root.commandName ? ["--help"] : [name, "--help"]
            let help = try await cli.run([CLI.binary] + arguments, executable: "/usr/bin/env", environment: ["COLUMNS": "80"])
            #expect(help.code == 0, "\(name): \(help.stderr)")
            let overview = help.stdout.components(separatedBy: "\nUSAGE:").first ?? ""
            let rendered = overview.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(rendered.allSatisfy { $0.count <= 80 }, "\(name)")
            for (line, next) in zip(rendered, rendered.dropFirst()) where Self.isProse(next) {
                #expect(line.isEmpty || line.count >= 40,
                        "\(name) --help at 80 columns: '\(line)' is a short line inside a paragraph")
            }
            let examples = (command.discussion ?? "").split(separator: "\n").filter { $0.hasPrefix(" ") }
            for example in examples {
                #expect(rendered.contains(example), "\(name) --help at 80 columns breaks the example '\(example)'")
            }
        }
    }

    @Test func cliDocumentsEveryCommandAndItsFlags() async throws {
        let root = try await Self.root()
        let cli = try String(contentsOf: CLI.repository.appendingPathComponent("docs/cli.md"), encoding: .utf8)
        let sections = cli.components(separatedBy: "\n## ")
        let shared = sections.first { $0.hasPrefix("Shared options") } ?? ""
        #expect(!shared.isEmpty, "docs/cli.md has a 'Shared options' section")
        let subcommands = root.subcommands ?? []
        #expect(subcommands.count >= 14)
        for command in subcommands {
            let name = command.commandName
            let section = sections.first { $0.hasPrefix("`provision \(name)`") }
            #expect(section != nil, "docs/cli.md has no section '## `provision \(name)`'")
            for option in command.longOptions {
                #expect(section?.contains("`\(option)") == true || shared.contains("`\(option)"),
                        "docs/cli.md does not document \(name)'s \(option)")
            }
        }
    }
}
