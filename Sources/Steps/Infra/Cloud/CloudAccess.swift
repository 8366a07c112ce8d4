import Engine
import Foundation
import JSON

/// How the provisioner reaches the EC2 API: AWS itself, or the sandbox's local moto server.
package struct CloudAccess: Sendable {
    let region: String
    let ec2: EC2Client
    /// Environment for terraform (credentials).
    let environment: [String: String]
    /// Provider settings that point terraform at the sandbox API, if any.
    let providerOverride: JSONValue?

    /// The sandbox: moto at `endpoint`, fake credentials (moto accepts any; they are not secrets).
    static func sandbox(endpoint: String, region: String) -> CloudAccess {
        let override: JSONValue = .object(["provider": .object(["aws": .object([
            "access_key": .string(SandboxCloud.accessKey), "secret_key": .string(SandboxCloud.secretKey),
            "skip_credentials_validation": .bool(true), "skip_metadata_api_check": .bool(true),
            "skip_region_validation": .bool(true), "skip_requesting_account_id": .bool(false),
            "endpoints": .array([.object(["ec2": .string(endpoint), "sts": .string(endpoint), "iam": .string(endpoint)])]),
        ])])])
        return CloudAccess(region: region, ec2: SandboxCloud.client(endpoint, region: region),
                           environment: ["AWS_EC2_METADATA_DISABLED": "true"], providerOverride: override)
    }

    /// AWS, with the credentials in the environment.
    static func aws(region: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CloudAccess {
        guard let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !key.isEmpty, !secret.isEmpty else {
            throw StepFailure("AWS credentials are missing: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
                              retryable: false)
        }
        return CloudAccess(region: region,
                           ec2: EC2Client(endpoint: "https://ec2.\(region).amazonaws.com", region: region, accessKey: key, secretKey: secret,
                                          sessionToken: environment["AWS_SESSION_TOKEN"]),
                           environment: [:], providerOverride: nil)
    }
}
