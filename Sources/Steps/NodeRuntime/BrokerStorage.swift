import Infra
import Transport

/// Where the broker (Tansu) keeps its log, its topics and the consumer groups' offsets.
///
/// | storage | broker restart | node reboot | object store restart |
/// | --- | --- | --- | --- |
/// | `memory` | lost | lost | - |
/// | `objectStore` | kept | kept | lost (moto keeps nothing on disk) |
public enum BrokerStorage: Sendable, Equatable {
    /// In the broker's memory: everything is gone when it restarts.
    case memory
    /// In an S3 bucket: the sandbox's moto, which serves S3 beside EC2 (`endpoint`:
    /// `http://127.0.0.1:PORT`). moto takes any credentials; these name no real account.
    case objectStore(endpoint: String, bucket: String)

    /// The bucket the sandbox's broker keeps its data in.
    public static let sandboxBucket = "pipeline-broker"

    /// Tansu's `--storage-engine`.
    public var engineURL: String {
        switch self {
        case .memory: "memory://tansu/"
        case .objectStore(_, let bucket): "s3://\(bucket)/"
        }
    }

    /// The broker's environment: where the object store is (Tansu reads the AWS SDK's variables).
    public var environment: [String: String] {
        switch self {
        case .memory: [:]
        case .objectStore(let endpoint, _):
            ["AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": "us-east-1",
             "AWS_ACCESS_KEY_ID": SandboxCloud.accessKey, "AWS_SECRET_ACCESS_KEY": SandboxCloud.secretKey]
        }
    }

    /// A command run on the node before the broker starts: creates the bucket (creating one that
    /// exists changes nothing).
    public var prepare: String? {
        switch self {
        case .memory: nil
        case .objectStore(let endpoint, let bucket):
            "curl -fsS -m 10 -o /dev/null -X PUT \(Shell.quoted("\(endpoint)/\(bucket)"))"
        }
    }
}
