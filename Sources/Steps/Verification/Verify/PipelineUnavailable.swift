/// Why a pipeline command (verify, a port forward, secrets, logs) cannot run for this plan or state:
/// what is missing, and what to run to get it.
public struct PipelineUnavailable: Error, CustomStringConvertible {
    public let description: String

    /// The error saying `description`.
    public init(description: String) { self.description = description }
}
