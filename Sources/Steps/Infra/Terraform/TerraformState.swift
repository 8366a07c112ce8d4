import Engine
import Foundation
import JSON

/// What a `terraform.tfstate` file records, by cloud resource kind: the resources a sweep keeps.
/// Read from the file itself (no terraform command), after any orphaned terraform has been
/// interrupted so the file is final.
public enum TerraformState {
    /// The Terraform resource type of each kind the modules create.
    static let types: [String: CloudResourceKind] = [
        "aws_instance": .instance, "aws_key_pair": .keyPair, "aws_security_group": .securityGroup,
        "aws_route_table_association": .routeTableAssociation, "aws_route_table": .routeTable,
        "aws_internet_gateway": .internetGateway, "aws_subnet": .subnet, "aws_vpc": .vpc,
    ]

    /// The managed resources recorded in `file` (tainted ones too: terraform replaces those
    /// itself); none when the file does not exist yet, or is empty with no backup recording
    /// anything (terraform truncates the file before writing it, so one killed at that moment
    /// leaves it empty, and terraform itself reads an empty state file as no state).
    /// - Throws: when the file exists but is not a Terraform state, so that nothing is swept on the
    ///   strength of a state that could not be read.
    public static func resources(in file: URL) throws -> PlanResources {
        guard FileManager.default.fileExists(atPath: file.path) else { return PlanResources() }
        if let data = try? Data(contentsOf: file), data.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) {
            // Empty: the first write was cut short (nothing was recorded), unless an earlier state
            // recorded something, which only that backup still knows.
            let backup = file.appendingPathExtension("backup")
            guard FileManager.default.fileExists(atPath: backup.path), let previous = try? resources(in: backup), !previous.isEmpty else {
                return PlanResources()
            }
            throw StepFailure("the terraform state \(file.path) is empty but \(backup.lastPathComponent) records \(previous); "
                              + "restore it from \(backup.lastPathComponent) before running again", retryable: false)
        }
        guard let data = try? Data(contentsOf: file), case .object(let state)? = JSONValue.parse(String(decoding: data, as: UTF8.self)) else {
            throw StepFailure("the terraform state \(file.path) cannot be read as JSON; restore it from \(file.lastPathComponent).backup or look at it before running again",
                              retryable: false)
        }
        var found = PlanResources()
        guard case .array(let resources)? = state["resources"] else { return found }
        for case .object(let resource) in resources where resource["mode"] == .string("managed") {
            guard case .string(let type)? = resource["type"], let kind = types[type], case .array(let instances)? = resource["instances"] else { continue }
            for case .object(let instance) in instances {
                if case .object(let attributes)? = instance["attributes"], case .string(let id)? = attributes["id"] { found[kind].insert(id) }
            }
        }
        return found
    }
}
