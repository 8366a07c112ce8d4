import Foundation

extension EC2Client {
    /// The user data `instance` was launched with, as EC2 holds it (DescribeInstanceAttribute
    /// `userData`, decoded from base64); nil when it has none.
    public func userData(instance: String) async throws -> String? {
        let tree = try await call("DescribeInstanceAttribute", ["InstanceId": instance, "Attribute": "userData"])
        guard let encoded = tree.value("userData/value"), !encoded.isEmpty, let data = Data(base64Encoded: encoded) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
