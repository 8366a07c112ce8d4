/// A plan that cannot be used, with the place and what to write instead.
public struct PlanError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The plan file.
    public var file: String
    /// 1-based line and column, when known.
    public var line: Int?
    public var column: Int?
    /// What is wrong.
    public var message: String
    /// What to write instead.
    public var hint: String?
    /// The offending source line with a caret under the column.
    public var snippet: String?

    /// Creates an error.
    public init(file: String, line: Int? = nil, column: Int? = nil, message: String, hint: String? = nil, snippet: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint
        self.snippet = snippet
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        var text = "\(location): error: \(message)"
        if let snippet, !snippet.isEmpty { text += "\n" + snippet }
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }
}
