/// Why the sandbox cloud or one of its nodes could not do its job.
public enum SandboxError: Error, CustomStringConvertible, Sendable {
    /// Every 127.0.1.N address is taken.
    case noAddress
    /// A node did not boot.
    case hostFailed(node: String, reason: String, log: String)
    /// The local EC2 API did not start.
    case cloudFailed(reason: String, log: String)
    /// The node image with cloud-init is missing.
    case missingImage(path: String)

    public var description: String {
        switch self {
        case .noAddress:
            return "no free loopback address 127.0.1.2-254 for another sandbox node; run 'provision down' on sandbox plans you no longer need"
        case .hostFailed(let node, let reason, let log):
            return "sandbox node \(node) did not start: \(reason) (log: \(log))"
        case .cloudFailed(let reason, let log):
            return "the sandbox EC2 API (moto) did not start: \(reason) (log: \(log))"
        case .missingImage(let path):
            return "the sandbox node image is missing at \(path); run scripts/bootstrap, which builds it (cloud-init inside an overlay layer)"
        }
    }
}
