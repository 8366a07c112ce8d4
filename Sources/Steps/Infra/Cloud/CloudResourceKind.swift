/// A kind of EC2 resource the Terraform modules create for a plan, declared in the order a sweep
/// removes them: what runs inside the VPC first, what the VPC needs next, the VPC last.
public enum CloudResourceKind: String, CaseIterable, Sendable, Codable {
    /// `aws_instance` (id `i-…`).
    case instance
    /// `aws_key_pair` (identified by its name, as Terraform's state does).
    case keyPair = "key pair"
    /// `aws_security_group` (id `sg-…`); a VPC's default group goes with its VPC and is never listed.
    case securityGroup = "security group"
    /// `aws_route_table_association` (id `rtbassoc-…`): a subnet's link to a route table of the
    /// plan; untagged, so found through the plan's route tables. A main association is never listed.
    case routeTableAssociation = "route table association"
    /// `aws_route_table` (id `rtb-…`); a VPC's main route table goes with its VPC and is never listed.
    case routeTable = "route table"
    /// `aws_internet_gateway` (id `igw-…`), detached from its VPC before it is deleted.
    case internetGateway = "internet gateway"
    /// `aws_subnet` (id `subnet-…`).
    case subnet
    /// `aws_vpc` (id `vpc-…`).
    case vpc = "VPC"

    /// The plural a report uses (`2 instances`).
    public var plural: String { self == .vpc ? "VPCs" : rawValue + "s" }
}
