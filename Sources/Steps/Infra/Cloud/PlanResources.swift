/// Resource ids by kind: what the cloud holds tagged for a plan, or what a Terraform state records.
public struct PlanResources: Sendable, Equatable, CustomStringConvertible {
    /// The ids of each kind; a kind with none may be absent.
    public private(set) var ids: [CloudResourceKind: Set<String>] = [:]

    /// An empty set of resources.
    public init() {}

    /// Resources with these ids.
    public init(_ ids: [CloudResourceKind: Set<String>]) {
        for (kind, set) in ids where !set.isEmpty { self.ids[kind] = set }
    }

    /// The ids of one kind (empty when there is none).
    public subscript(kind: CloudResourceKind) -> Set<String> {
        get { ids[kind] ?? [] }
        set { ids[kind] = newValue.isEmpty ? nil : newValue }
    }

    /// Whether there is no resource of any kind.
    public var isEmpty: Bool { ids.values.allSatisfy(\.isEmpty) }

    /// How many resources there are of each kind, every kind listed (0 for none).
    public var counts: [CloudResourceKind: Int] {
        Dictionary(uniqueKeysWithValues: CloudResourceKind.allCases.map { ($0, self[$0].count) })
    }

    /// The resources here that `other` does not have.
    public func subtracting(_ other: PlanResources) -> PlanResources {
        PlanResources(Dictionary(uniqueKeysWithValues: CloudResourceKind.allCases.map { ($0, self[$0].subtracting(other[$0])) }))
    }

    /// `1 VPC (vpc-1), 2 instances (i-1, i-2)` in sweep order, or `nothing`.
    public var description: String {
        let parts = CloudResourceKind.allCases.compactMap { kind -> String? in
            let set = self[kind].sorted()
            guard !set.isEmpty else { return nil }
            return "\(set.count) \(set.count == 1 ? kind.rawValue : kind.plural) (\(set.joined(separator: ", ")))"
        }
        return parts.isEmpty ? "nothing" : parts.joined(separator: ", ")
    }
}
