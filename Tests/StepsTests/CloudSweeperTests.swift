@testable import App
import Engine
import Foundation
@testable import Infra
import Testing

/// The sweep of a plan's untracked resources against a real moto on loopback: every kind the
/// Terraform modules create, wired together as terraform wires them (an attached gateway, an
/// associated route table, instances in the subnet), so that a wrong order is refused by the API.
@Suite struct CloudSweeperTests {
    @Test func sweepRemovesEveryKindTaggedForThePlanThatTheStateDoesNotRecordInDependencyOrderAndNothingElse() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cloud = SandboxCloud(stateDirectory: directory, nodeImage: repositoryRoot.appendingPathComponent(".tools/node-image"))
        let log = StepLog(path: directory.appendingPathComponent("sweep.log"), redactor: Redactor())
        let record = try await cloud.start(log: log)
        // Started means its EC2 backend is built: the start made the first (slow) EC2 call itself.
        let motoLog = (try? String(contentsOf: directory.appendingPathComponent("sandbox/moto.log"), encoding: .utf8)) ?? ""
        #expect(motoLog.contains("\"POST / HTTP/1.1\" 200"), "moto's log: \(motoLog.suffix(500))")
        do {
            try await sweepEveryKind(SandboxCloud.client(record.endpoint))
        } catch {
            await cloud.stop()
            throw error
        }
        await cloud.stop()
        #expect(!record.process.isRunning, "moto is stopped")
    }

    private func sweepEveryKind(_ ec2: EC2Client) async throws {
        let created = try await createNetworkAndNodes(ec2, plan: "sweep", cidr: "10.9")
        let other = try await createNetworkAndNodes(ec2, plan: "other", cidr: "10.8")
        let found = try await ec2.resources(plan: "sweep")
        #expect(found == created, "found \(found), created \(created)")
        #expect(found.counts == [.instance: 2, .keyPair: 1, .securityGroup: 1, .routeTableAssociation: 1, .routeTable: 1, .internetGateway: 1, .subnet: 1, .vpc: 1])

        // A kill early in the apply: the state recorded only the key pair.
        let sweeper = CloudSweeper(ec2: ec2, plan: "sweep", patience: .seconds(30))
        let kept = PlanResources([.keyPair: created[.keyPair]])
        var lines: [String] = []
        let removed = try await sweeper.sweep(keeping: kept, log: { lines.append($0) })
        #expect(removed == created.subtracting(kept))
        #expect(try await ec2.resources(plan: "sweep") == kept)
        #expect(lines.first?.contains("not in the terraform state") == true && lines.first?.contains("1 VPC (") == true, "\(lines)")
        #expect(try await ec2.resources(plan: "other") == other, "another plan's resources are untouched")

        #expect(try await sweeper.sweep(keeping: PlanResources(), log: { _ in }) == kept)
        #expect(try await ec2.resources(plan: "sweep").isEmpty)
        #expect(try await sweeper.sweep(keeping: PlanResources(), log: { _ in }).isEmpty, "nothing left: a no-op")
    }

    /// What the modules create, through the EC2 API, tagged `provision:plan = plan`.
    private func createNetworkAndNodes(_ ec2: EC2Client, plan: String, cidr: String) async throws -> PlanResources {
        func tags(_ type: String) -> [String: String] {
            ["TagSpecification.1.ResourceType": type, "TagSpecification.1.Tag.1.Key": EC2Client.planTag, "TagSpecification.1.Tag.1.Value": plan]
        }
        func create(_ action: String, _ type: String, _ parameters: [String: String], id element: String) async throws -> String {
            try #require(try await ec2.call(action, parameters.merging(tags(type)) { $1 }).all(element).first?.text)
        }
        let vpc = try await create("CreateVpc", "vpc", ["CidrBlock": "\(cidr).0.0/16"], id: "vpcId")
        let subnet = try await create("CreateSubnet", "subnet", ["VpcId": vpc, "CidrBlock": "\(cidr).1.0/24"], id: "subnetId")
        let gateway = try await create("CreateInternetGateway", "internet-gateway", [:], id: "internetGatewayId")
        _ = try await ec2.call("AttachInternetGateway", ["InternetGatewayId": gateway, "VpcId": vpc])
        let table = try await create("CreateRouteTable", "route-table", ["VpcId": vpc], id: "routeTableId")
        let association = try #require(try await ec2.call("AssociateRouteTable", ["RouteTableId": table, "SubnetId": subnet]).all("associationId").first?.text)
        let group = try await create("CreateSecurityGroup", "security-group", ["GroupName": "\(plan)-nodes", "GroupDescription": "nodes", "VpcId": vpc], id: "groupId")
        let key = "\(plan)-admin"
        let material = Data("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk7uW2f1ymYQm1hQq6w0sVq3c0m2C8t3fJv0Jv6Qy5a test".utf8).base64EncodedString()
        _ = try await ec2.call("ImportKeyPair", ["KeyName": key, "PublicKeyMaterial": material].merging(tags("key-pair")) { $1 })
        let run = try await ec2.call("RunInstances", [
            "ImageId": "ami-785db401", "MinCount": "2", "MaxCount": "2", "InstanceType": "t3.large", "SubnetId": subnet,
            "SecurityGroupId.1": group, "KeyName": key,
        ].merging(tags("instance")) { $1 })
        let instances = Set(run.all("instanceId").map(\.text))
        #expect(instances.count == 2)
        return PlanResources([
            .instance: instances, .keyPair: [key], .securityGroup: [group], .routeTableAssociation: [association],
            .routeTable: [table], .internetGateway: [gateway], .subnet: [subnet], .vpc: [vpc],
        ])
    }
}
