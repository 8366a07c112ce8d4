import Foundation

/// Finding every resource tagged for a plan, kind by kind, and removing one.
extension EC2Client {
    /// Everything tagged `provision:plan = plan` that still exists: instances not terminated,
    /// key pairs, security groups, route tables with their subnet associations, internet gateways,
    /// subnets and VPCs. A VPC's default security group, main route table and main association go
    /// with the VPC and are not listed.
    public func resources(plan: String) async throws -> PlanResources {
        let tagged = ["Filter.1.Name": "tag:\(Self.planTag)", "Filter.1.Value.1": plan]
        var found = PlanResources()
        let instances = try await call("DescribeInstances", tagged.merging([
            "Filter.2.Name": "instance-state-name", "Filter.2.Value.1": "pending", "Filter.2.Value.2": "running",
            "Filter.2.Value.3": "shutting-down", "Filter.2.Value.4": "stopping", "Filter.2.Value.5": "stopped",
        ]) { $1 })
        found[.instance] = Set((instances.child("reservationSet")?.all("instancesSet") ?? []).flatMap { $0.children.compactMap { $0.value("instanceId") } })
        found[.keyPair] = Set(try await items("DescribeKeyPairs", tagged, set: "keySet").compactMap { $0.value("keyName") })
        found[.securityGroup] = Set(try await items("DescribeSecurityGroups", tagged, set: "securityGroupInfo")
            .filter { $0.value("groupName") != "default" }.compactMap { $0.value("groupId") })
        let routeTables = try await items("DescribeRouteTables", tagged, set: "routeTableSet")
        found[.routeTable] = Set(routeTables.compactMap { $0.value("routeTableId") })
        found[.routeTableAssociation] = Set(routeTables.flatMap { table in
            (table.child("associationSet")?.children ?? []).filter { association in
                association.value("main") != "true" && ["associated", "associating", nil].contains(association.value("associationState/state"))
            }.compactMap { $0.value("routeTableAssociationId") }
        })
        found[.internetGateway] = Set(try await items("DescribeInternetGateways", tagged, set: "internetGatewaySet").compactMap { $0.value("internetGatewayId") })
        found[.subnet] = Set(try await items("DescribeSubnets", tagged, set: "subnetSet").compactMap { $0.value("subnetId") })
        found[.vpc] = Set(try await items("DescribeVpcs", tagged, set: "vpcSet").compactMap { $0.value("vpcId") })
        return found
    }

    /// Removes one resource: terminates an instance, deletes a key pair by name, disassociates a
    /// route table association, detaches an internet gateway from its VPCs before deleting it,
    /// deletes anything else by id. The caller orders the kinds (`CloudSweeper`).
    public func remove(_ kind: CloudResourceKind, _ id: String) async throws {
        switch kind {
        case .instance: try await terminate([id])
        case .keyPair: _ = try await call("DeleteKeyPair", ["KeyName": id])
        case .securityGroup: _ = try await call("DeleteSecurityGroup", ["GroupId": id])
        case .routeTableAssociation: _ = try await call("DisassociateRouteTable", ["AssociationId": id])
        case .routeTable: _ = try await call("DeleteRouteTable", ["RouteTableId": id])
        case .internetGateway:
            let gateways = try await items("DescribeInternetGateways", ["InternetGatewayId.1": id], set: "internetGatewaySet")
            for vpc in gateways.flatMap({ ($0.child("attachmentSet")?.children ?? []).compactMap { $0.value("vpcId") } }) {
                _ = try await call("DetachInternetGateway", ["InternetGatewayId": id, "VpcId": vpc])
            }
            _ = try await call("DeleteInternetGateway", ["InternetGatewayId": id])
        case .subnet: _ = try await call("DeleteSubnet", ["SubnetId": id])
        case .vpc: _ = try await call("DeleteVpc", ["VpcId": id])
        }
    }

    /// The `item`s of the response's `set` element.
    private func items(_ action: String, _ parameters: [String: String], set: String) async throws -> [XMLTree] {
        try await call(action, parameters).child(set)?.children ?? []
    }
}
