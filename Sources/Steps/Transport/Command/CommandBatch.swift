import Engine
import Foundation

/// Read-only commands run together as one command: one round trip to wherever they run, the
/// commands concurrently there, and each one's standard output back by itself, in order.
///
/// Each command runs in its own subshell with its output in a file of a private temporary
/// folder (its standard error is discarded); once all have ended, the files are printed, each
/// behind a separator line and followed by a line break. A command that fails still yields what it
/// printed: the batch reports output, never exit statuses, so a command that needs one prints it.
///
/// A `prelude` runs first, once, in the batch's own shell: what it sets (a shell variable that
/// answers for every command at once, say) every command can read.
public struct CommandBatch: Sendable, Equatable {
    /// The commands, in the order their outputs come back.
    public let commands: [String]
    /// Run once before the commands, in the shell they inherit from; nil for none.
    public let prelude: String?

    /// A batch of `commands`, after `prelude`.
    public init(_ commands: [String], prelude: String? = nil) {
        self.commands = commands
        self.prelude = prelude
    }

    /// The one shell command that runs the batch (one `cat` prints every output: each command's
    /// file already holds its separator line and its closing line break).
    public var script: String {
        var lines = [#"__pb=$(mktemp -d) || exit 1; trap 'rm -rf "$__pb"' EXIT"#]
        if let prelude { lines.append("{\n\(prelude)\n} 2>/dev/null </dev/null") }
        for (index, command) in commands.enumerated() {
            lines.append("{ printf '\\036%s\\n' \(index); (\n\(command)\n) 2>/dev/null </dev/null; echo; } >\"$__pb/\(index)\" &")
        }
        lines.append("wait")
        if !commands.isEmpty { lines.append("cat " + commands.indices.map { "\"$__pb/\($0)\"" }.joined(separator: " ")) }
        return lines.joined(separator: "\n")
    }

    /// What marks the start of one command's output: an ASCII record separator, which no command
    /// of a batch prints (they print text), then the command's index.
    static let separator: Character = "\u{1E}"

    /// Each command's output, in the order of `commands`, from the batch's standard output; nil
    /// when the batch did not finish (a section is missing).
    public func outputs(_ stdout: String) -> [String]? {
        var sections: [Int: String] = [:]
        for part in stdout.split(separator: Self.separator, omittingEmptySubsequences: false).dropFirst() {
            // "<index>\n<output>\n": the batch ends every output with one line break of its own.
            guard let newline = part.firstIndex(of: "\n"), let index = Int(part[..<newline]) else { return nil }
            var output = part[part.index(after: newline)...]
            guard output.hasSuffix("\n") else { return nil }
            output.removeLast()
            sections[index] = String(output)
        }
        guard sections.count == commands.count else { return nil }
        return commands.indices.map { sections[$0] ?? "" }
    }

    /// Runs the batch with `runner`: one command there.
    /// - Returns: each command's output, in order.
    public func run(on runner: any CommandRunner, timeout: Duration?) async throws -> [String] {
        let result = try await runner.run(script, timeout: timeout)
        guard let outputs = outputs(result.stdout) else {
            throw StepFailure("a batch of \(commands.count) read-only commands on \(runner.location) did not finish: \(result.summary) \(result.stderr.suffix(300))")
        }
        return outputs
    }
}
