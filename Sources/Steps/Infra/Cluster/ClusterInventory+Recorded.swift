import Engine

extension ClusterInventory {
    /// The inventory the last successful `terraform.apply` recorded in `store`, if any.
    public static func recorded(in store: any RunStore) throws -> ClusterInventory? {
        guard let record = try store.steps()[TerraformApplyStep.id], !record.outputs.isEmpty else { return nil }
        return try? ClusterInventory(outputs: record.outputs)
    }
}
