/// Replaces secret values with a placeholder wherever text leaves the process:
/// logs, events, stored errors, outputs and `--json`.
public struct Redactor: Sendable {
    /// What a secret is replaced with.
    public static let placeholder = "***"

    private let secrets: [String]

    /// Creates a redactor for these values; values shorter than 4 characters are ignored, since
    /// replacing them would mangle ordinary text without protecting anything.
    public init(secrets: [String] = []) {
        self.secrets = Set(secrets.filter { $0.count >= 4 }).sorted { $0.count > $1.count }
    }

    /// A redactor that also hides `more`.
    public func adding(_ more: [String]) -> Redactor { Redactor(secrets: secrets + more) }

    /// Whether there is anything to hide.
    public var isEmpty: Bool { secrets.isEmpty }

    /// `text` with every secret value replaced.
    public func redact(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.placeholder)
        }
        return result
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
