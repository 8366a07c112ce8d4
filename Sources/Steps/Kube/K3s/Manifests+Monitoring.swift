import Foundation
import Yams

extension Manifests {
    /// The namespace the monitoring step deploys.
    static let monitoringNamespace = "monitoring"

    /// The monitoring step's objects of `yaml` (kustomize's output): the Namespace `monitoring`,
    /// every object in it, and every HelmChart wherever it lives (kube-system).
    static func selectMonitoring(_ yaml: String) throws -> Manifests {
        var objects: [(id: KubeObject, json: String)] = []
        for document in try Yams.compose_all(yaml: yaml) {
            let value = plain(document)
            guard case .object = value, let id = KubeObject(manifest: value) else { continue }
            let mine = (id.kind == "Namespace" && id.apiVersion == "v1") ? id.name == monitoringNamespace
                : id.namespace == monitoringNamespace || id.isHelmChart
            guard mine else { continue }
            objects.append((id, String(decoding: value.compactData, as: UTF8.self)))
        }
        return Manifests(objects: objects)
    }

    /// The objects that need the charts' CRDs (ServiceMonitor, PrometheusRule: monitoring.coreos.com),
    /// applied once the charts are installed, and the others.
    var splitByCRDs: (first: Manifests, afterCharts: Manifests) {
        let late = objects.filter { $0.id.group == "monitoring.coreos.com" }
        let early = objects.filter { $0.id.group != "monitoring.coreos.com" }
        return (Manifests(objects: early), Manifests(objects: late))
    }

    /// The HelmCharts, decoded.
    var helmCharts: [(id: KubeObject, object: KubeHelmChart)] {
        objects.filter { $0.id.isHelmChart }.compactMap { entry in
            (try? JSONDecoder().decode(KubeHelmChart.self, from: Data(entry.json.utf8))).map { (entry.id, $0) }
        }
    }
}

extension KubeObject {
    /// Whether this is a K3s HelmChart (helm.cattle.io).
    var isHelmChart: Bool { kind == "HelmChart" && group == "helm.cattle.io" }
}
