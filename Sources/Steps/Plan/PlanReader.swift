import Foundation
import Engine
import Yams

/// Typed access to a composed YAML tree that turns every mistake into a `PlanError` pointing at
/// the offending node, with a snippet and a hint.
package struct PlanReader {
    let file: String
    let lines: [Substring]

    init(file: String, text: String) {
        self.file = file
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func error(at node: Node?, _ message: String, hint: String? = nil) -> PlanError {
        error(line: node?.mark?.line, column: node?.mark?.column, message, hint: hint)
    }

    func error(line: Int?, column: Int?, _ message: String, hint: String? = nil) -> PlanError {
        var snippet: String?
        if let line, line >= 1, line <= lines.count {
            let source = String(lines[line - 1].prefix(160)).replacingOccurrences(of: "\t", with: " ")
            snippet = "  \(line) | \(source)"
            if let column, column >= 1 {
                snippet! += "\n  " + String(repeating: " ", count: String(line).count) + " | " + String(repeating: " ", count: column - 1) + "^"
            }
        }
        return PlanError(file: file, line: line, column: column, message: message, hint: hint, snippet: snippet)
    }

    /// A mapping's entries by key, rejecting unknown, duplicate and missing keys.
    func mapping(_ node: Node, _ what: String, allowed: [String], required: [String] = []) throws -> [String: (key: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, "\(what) must be a mapping of keys to values, found \(kind(of: node))",
                        hint: "write it as 'key: value' lines; allowed keys: \(allowed.joined(separator: ", "))")
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else { throw error(at: key, "keys in \(what) must be plain words") }
            let name = scalar.string
            guard allowed.contains(name) else {
                let suggestion = EditDistance.suggestion(for: name, among: allowed)
                throw error(at: key, "unknown key '\(name)' in \(what)",
                            hint: (suggestion.map { "did you mean '\($0)'? " } ?? "") + "allowed keys: \(allowed.joined(separator: ", "))")
            }
            guard result[name] == nil else {
                throw error(at: key, "key '\(name)' appears twice in \(what)", hint: "keep one of them")
            }
            result[name] = (key, value)
        }
        for name in required where result[name] == nil {
            throw error(at: node, "\(what) is missing the required key '\(name)'", hint: "add '\(name): ...'")
        }
        return result
    }

    func string(_ node: Node, _ what: String) throws -> String {
        guard case .scalar(let scalar) = node else {
            throw error(at: node, "\(what) must be text, found \(kind(of: node))", hint: "quote it if it contains ': ' or starts with '{' or '['")
        }
        if isNull(scalar) { throw error(at: node, "\(what) needs a value", hint: "write a value after the colon") }
        return scalar.string
    }

    func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func bool(_ node: Node, _ what: String) throws -> Bool {
        guard case .scalar(let scalar) = node, let value = Bool(scalar.string) else {
            throw error(at: node, "\(what) must be true or false, found \(kind(of: node))", hint: "write true or false")
        }
        return value
    }

    func int(_ node: Node, _ what: String, range: ClosedRange<Int>) throws -> Int {
        let text = try string(node, what)
        guard let value = Int(text) else {
            throw error(at: node, "\(what) must be a whole number, found '\(text)'", hint: "write a number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw error(at: node, "\(what) must be from \(range.lowerBound) to \(range.upperBound), found \(value)")
        }
        return value
    }

    func number(_ node: Node, _ what: String, range: ClosedRange<Double>) throws -> Double {
        let text = try string(node, what)
        guard let value = Double(text), value.isFinite else {
            throw error(at: node, "\(what) must be a number, found '\(text)'", hint: "write a number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw error(at: node, "\(what) must be from \(range.lowerBound) to \(range.upperBound), found \(value)")
        }
        return value
    }

    func duration(_ node: Node, _ what: String) throws -> Duration {
        let text = try string(node, what)
        guard let value = Self.parseDuration(text) else {
            throw error(at: node, "\(what) must be a duration, found '\(text)'", hint: "write a duration like 500ms, 10s, 5m, 1h or 1m30s")
        }
        return value
    }

    /// Text or a list of texts.
    func stringList(_ node: Node, _ what: String) throws -> [String] {
        if case .sequence(let sequence) = node { return try sequence.map { try string($0, "each item of \(what)") } }
        return [try string(node, what)]
    }

    func stringMap(_ node: Node, _ what: String) throws -> [String: String] {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, "\(what) must be a mapping of names to values, found \(kind(of: node))", hint: "write 'NAME: value' lines")
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            let name = try string(key, "a name in \(what)")
            guard result[name] == nil else { throw error(at: key, "'\(name)' appears twice in \(what)") }
            result[name] = try string(value, "\(what).\(name)")
        }
        return result
    }

    func kind(of node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(let s) where isNull(s): "nothing"
        case .scalar(let s): "'\(s.string.prefix(40))'"
        case .alias: "an alias"
        }
    }

    /// "500ms", "10s", "5m", "1h", "1m30s", or a bare number of seconds.
    package static func parseDuration(_ text: String) -> Duration? {
        if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int(seconds * 1000)) }
        var total = 0.0
        var number = ""
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        while let c = rest.first {
            if c.isNumber || c == "." {
                number.append(c)
                rest = rest.dropFirst()
                continue
            }
            guard let value = Double(number) else { return nil }
            let unit: Double
            if rest.hasPrefix("ms") { unit = 0.001; rest = rest.dropFirst(2) }
            else if c == "s" { unit = 1; rest = rest.dropFirst() }
            else if c == "m" { unit = 60; rest = rest.dropFirst() }
            else if c == "h" { unit = 3600; rest = rest.dropFirst() }
            else { return nil }
            total += value * unit
            number = ""
        }
        guard number.isEmpty else { return nil }
        return .milliseconds(Int(total * 1000))
    }
}
