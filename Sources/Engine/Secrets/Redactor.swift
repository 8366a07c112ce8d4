import Foundation

/// Replaces secret values with a placeholder wherever text leaves the process:
/// logs, events, stored errors, outputs and `--json`.
///
/// One redactor serves a whole run and is shared by reference: a secret a step learns while it
/// runs (a join token) is added with `add(_:)` (or `StepContext.addSecret`) and is hidden from
/// then on everywhere, in that step's log, its events, its outputs and every later step's.
public final class Redactor: @unchecked Sendable {
    /// What a secret is replaced with.
    public static let placeholder = "***"

    private let lock = NSLock()
    private var values: [String]

    /// Creates a redactor for these values; values shorter than 4 characters are ignored, since
    /// replacing them would mangle ordinary text without protecting anything.
    public init(secrets: [String] = []) {
        self.values = Self.normalised(secrets)
    }

    /// A new redactor that hides what this one does and `more` (this one is unchanged).
    public func adding(_ more: [String]) -> Redactor { Redactor(secrets: current + more) }

    /// Hides `more` from now on, everywhere this redactor is used.
    public func add(_ more: [String]) {
        lock.withLock { values = Self.normalised(values + more) }
    }

    /// Whether there is anything to hide.
    public var isEmpty: Bool { current.isEmpty }

    /// `text` with every secret value replaced.
    public func redact(_ text: String) -> String {
        let secrets = current
        guard !secrets.isEmpty else { return text }
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.placeholder)
        }
        return result
    }

    private var current: [String] { lock.withLock { values } }

    /// Distinct values of at least 4 characters, longest first (so a secret wins over its prefix).
    private static func normalised(_ values: [String]) -> [String] {
        Set(values.filter { $0.count >= 4 }).sorted { $0.count > $1.count }
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
