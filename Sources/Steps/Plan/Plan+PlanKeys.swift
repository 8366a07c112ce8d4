import Foundation

// The plan's keys with their values, as `Step.planKeys` names them for `provision plan`: the
// dotted path of the key in the plan file, its value as text, never a secret's value.

extension PipelineSpec {
    /// `pipeline.<key>` for each of `names` (`images` gives `images.processor` and `images.producer`).
    package func planKeys(_ names: [String]) -> [String: String] {
        var all = [
            "rate": Self.number(rate), "gpus_per_producer": String(gpusPerProducer), "batch_size": String(batchSize),
            "batch_wait_ms": String(batchWaitMs), "partitions": String(partitions), "retention_days": String(retentionDays),
        ]
        if let maxLatency { all["max_latency"] = maxLatency.formatted }
        if let images {
            all["images.processor"] = images.processor
            all["images.producer"] = images.producer
        }
        return Self.select(all, names, prefix: "pipeline.")
    }

    /// A rate as the producer reads it: "50", "12.5".
    package static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func select(_ all: [String: String], _ names: [String], prefix: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: all.filter { key, _ in names.contains { key == $0 || key.hasPrefix($0 + ".") } }
            .map { (prefix + $0.key, $0.value) })
    }
}

extension K3sSpec {
    /// `k3s.<key>` for each of `names` (`airgap` gives its three files).
    package func planKeys(_ names: [String]) -> [String: String] {
        var all: [String: String] = [
            "version": version, "token": tokenSecret.map { "secret:\($0)" } ?? "generated", "extra_args": extraArgs.joined(separator: " "),
            "disable": disable.joined(separator: ","), "cluster_cidr": clusterCIDR.description, "service_cidr": serviceCIDR.description,
            "ready_timeout": readyTimeout.formatted, "install_timeout": installTimeout.formatted, "merge_kubeconfig": String(mergeKubeconfig),
            "kubeconfig": kubeconfigPath, "manifests": manifests, "overlay": overlay, "rollout_timeout": rolloutTimeout.formatted,
            "monitoring_timeout": monitoringTimeout.formatted, "verify_timeout": verifyTimeout.formatted, "api_access": apiAccess.rawValue,
            "api_local_port": String(apiLocalPort), "max_unavailable": String(maxUnavailable), "drain_timeout": drainTimeout.formatted,
        ]
        if let airgap {
            all["airgap.install_script"] = airgap.installScript
            all["airgap.binary"] = airgap.binary
            all["airgap.images"] = airgap.images ?? ""
        }
        return PipelineSpec.select(all, names, prefix: "k3s.")
    }
}
