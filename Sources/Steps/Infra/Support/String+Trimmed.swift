import Foundation

extension String {
    /// The text without leading and trailing whitespace and newlines.
    package var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
