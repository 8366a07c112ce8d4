import Foundation
import Transport

/// What `provision port-forward` reaches: a monitoring Service of the cluster or the K3s API.
///
/// The Service names are those kube-prometheus-stack gives its Services for the HelmChart release
/// in k8s/base/monitoring/charts/kube-prometheus-stack.yaml (release `kube-prometheus-stack`, which
/// contains the chart's name, so the chart's full name is the release name), in namespace
/// `monitoring` (the chart's `targetNamespace`).
public enum ForwardTarget: String, Sendable, CaseIterable {
    case grafana, prometheus, alertmanager, api

    /// The HelmChart release of the monitoring stack.
    public static let release = "kube-prometheus-stack"
    /// The namespace the monitoring Services live in.
    public static let namespace = "monitoring"
    /// The K3s API server's port on the control plane.
    public static let apiPort = 6443

    /// The Service's name; nil for `api` (no Service: the control plane's own address).
    public var serviceName: String? {
        switch self {
        case .grafana: "\(Self.release)-grafana"
        case .prometheus: "\(Self.release)-prometheus"
        case .alertmanager: "\(Self.release)-alertmanager"
        case .api: nil
        }
    }

    /// The port the chart gives the Service (used when it lists several).
    public var servicePort: Int {
        switch self {
        case .grafana: 80
        case .prometheus: 9090
        case .alertmanager: 9093
        case .api: Self.apiPort
        }
    }

    /// The scheme of the local URL.
    public var scheme: String { self == .api ? "https" : "http" }

    /// The cluster address and port of a Service from the API's JSON for it: its
    /// `spec.clusterIP` and the port named by `servicePort` (or its only port).
    public func address(fromServiceJSON data: Data) throws -> (host: String, port: Int) {
        try Self.serviceAddress(data, namespace: Self.namespace, name: serviceName ?? rawValue, port: servicePort)
    }

    /// The cluster address of Service `namespace/name` from the API's JSON for it: its
    /// `spec.clusterIP` and `port` (or its only port).
    public static func serviceAddress(_ data: Data, namespace: String, name: String, port wanted: Int) throws -> (host: String, port: Int) {
        guard let spec = (try? JSONDecoder().decode(KubeService.self, from: data))?.spec else {
            throw PortForwardError(description: "the cluster's answer for Service \(namespace)/\(name) is not a Service object")
        }
        guard let host = spec.clusterIP, !host.isEmpty, host != "None" else {
            throw PortForwardError(description: "Service \(namespace)/\(name) has no cluster IP (headless); nothing to forward to")
        }
        let ports = (spec.ports ?? []).compactMap(\.port)
        guard let port = ports.contains(wanted) ? wanted : (ports.count == 1 ? ports[0] : nil) else {
            throw PortForwardError(description: "Service \(namespace)/\(name) has no port \(wanted) (it has \(ports.map(String.init).joined(separator: ", ")))")
        }
        return (host, port)
    }
}
