import Foundation
import Transport

/// The few EC2 query-API calls the provisioner makes itself (outside Terraform): finding what is
/// tagged for a plan and removing it (`EC2Client+PlanResources.swift`). Signed with libcurl's SigV4.
public struct EC2Client: Sendable {
    /// An instance as EC2 describes it.
    public struct Instance: Sendable, Equatable {
        public let id: String
        /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
        public let state: String
        public let tags: [String: String]
    }

    /// The API endpoint (`https://ec2.us-east-1.amazonaws.com` or the sandbox's moto URL).
    public let endpoint: String
    let signing: HTTPClient.AWSSigning
    let http: HTTPClient

    /// The tag every resource of a plan carries: `provision:plan = <plan name>`.
    public static let planTag = "provision:plan"

    /// A client for `endpoint` in `region` with the given credentials; a call that has no answer
    /// after `timeout` (the AWS SDKs' default read timeout, 60 s) fails.
    public init(endpoint: String, region: String, accessKey: String, secretKey: String, sessionToken: String? = nil,
                timeout: Duration = .seconds(60)) {
        self.endpoint = endpoint
        self.http = HTTPClient(timeout: timeout)
        self.signing = .init(region: region, service: "ec2", accessKey: accessKey, secretKey: secretKey, sessionToken: sessionToken)
    }

    /// Instances tagged for `plan` that are not terminated.
    public func liveInstances(plan: String) async throws -> [Instance] {
        let tree = try await call("DescribeInstances", [
            "Filter.1.Name": "tag:\(Self.planTag)", "Filter.1.Value.1": plan,
            "Filter.2.Name": "instance-state-name",
            "Filter.2.Value.1": "pending", "Filter.2.Value.2": "running", "Filter.2.Value.3": "stopping", "Filter.2.Value.4": "stopped",
        ])
        return (tree.child("reservationSet")?.all("instancesSet") ?? []).flatMap { set in
            set.children.map { item in
                let tags = (item.child("tagSet")?.children ?? []).reduce(into: [String: String]()) { result, tag in
                    result[tag.value("key") ?? ""] = tag.value("value") ?? ""
                }
                return Instance(id: item.value("instanceId") ?? "", state: item.value("instanceState/name") ?? "", tags: tags)
            }
        }
    }

    /// Terminates `ids` (no-op for an empty list).
    public func terminate(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        var parameters: [String: String] = [:]
        for (index, id) in ids.enumerated() { parameters["InstanceId.\(index + 1)"] = id }
        _ = try await call("TerminateInstances", parameters)
    }

    func call(_ action: String, _ parameters: [String: String]) async throws -> XMLTree {
        var form = ["Action=\(action)", "Version=2016-11-15"]
        for (key, value) in parameters.sorted(by: { $0.key < $1.key }) { form.append("\(Self.encode(key))=\(Self.encode(value))") }
        let response = try await http.send("POST", endpoint.hasSuffix("/") ? endpoint : endpoint + "/",
                                           headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
                                           body: Data(form.joined(separator: "&").utf8), signing: signing)
        guard let tree = XMLTree.parse(response.body) else {
            throw EC2Error(action: action, code: "HTTP \(response.status)", message: "not an EC2 response: \(response.text.prefix(200))")
        }
        guard (200..<300).contains(response.status) else {
            throw EC2Error(action: action, code: tree.all("Code").first?.text ?? "HTTP \(response.status)", message: tree.all("Message").first?.text ?? "")
        }
        return tree
    }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// An EC2 API call was refused.
public struct EC2Error: Error, CustomStringConvertible, Sendable {
    /// The API action (`DeleteVpc`).
    public let action: String
    /// EC2's error code (`DependencyViolation`, `InvalidVpcID.NotFound`), or the HTTP status.
    public let code: String
    /// EC2's message.
    public let message: String

    /// The resource the call was about does not exist (any more).
    public var isNotFound: Bool { code.hasSuffix(".NotFound") || code.hasSuffix("NotFound") }
    /// Something still uses the resource (AWS lets go of a terminated instance's network a little later).
    public var isDependencyViolation: Bool { code == "DependencyViolation" || code == "InvalidGatewayID.NotDetached" }

    public var description: String { "EC2 \(action) failed: \(code): \(message); check the credentials and region" }
}
