@testable import App
import Foundation
@testable import Kube
import Testing
@testable import Transport

/// What `provision port-forward` reaches: Service names that match the monitoring HelmChart in k8s/,
/// and a Service's address read from `kubectl get svc -o json`.
@Suite struct ForwardTargetTests {
    @Test func serviceNamesFollowTheHelmChartReleaseAndItsTargetNamespace() throws {
        let chart = try String(contentsOf: repositoryRoot.appendingPathComponent("k8s/base/monitoring/charts/kube-prometheus-stack.yaml"), encoding: .utf8)
        let lines = chart.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.contains("name: \(ForwardTarget.release)") && lines.contains("chart: kube-prometheus-stack"))
        #expect(lines.contains("targetNamespace: \(ForwardTarget.namespace)"))
        #expect(!chart.contains("fullnameOverride"), "an override would rename the Services")
        #expect(ForwardTarget.prometheus.serviceName == "kube-prometheus-stack-prometheus" && ForwardTarget.prometheus.servicePort == 9090)
        #expect(ForwardTarget.grafana.serviceName == "kube-prometheus-stack-grafana" && ForwardTarget.grafana.servicePort == 80)
        #expect(ForwardTarget.alertmanager.serviceName == "kube-prometheus-stack-alertmanager" && ForwardTarget.alertmanager.servicePort == 9093)
        #expect(ForwardTarget.api.serviceName == nil && ForwardTarget.api.scheme == "https")
    }

    @Test func aServiceAddressIsItsClusterIPAndTheChartsPortAndAHeadlessOneSaysSo() throws {
        let two = #"{"kind":"Service","spec":{"clusterIP":"10.43.7.9","ports":[{"name":"reloader","port":8080},{"name":"http-web","port":9090}]}}"#
        let address = try ForwardTarget.prometheus.address(fromServiceJSON: Data(two.utf8))
        #expect(address.host == "10.43.7.9" && address.port == 9090)
        let one = #"{"kind":"Service","spec":{"clusterIP":"10.43.7.10","ports":[{"port":3000}]}}"#
        #expect(try ForwardTarget.grafana.address(fromServiceJSON: Data(one.utf8)).port == 3000, "its only port")
        let headless = #"{"kind":"Service","spec":{"clusterIP":"None","ports":[{"port":9093}]}}"#
        let error = #expect(throws: PortForwardError.self) { try ForwardTarget.alertmanager.address(fromServiceJSON: Data(headless.utf8)) }
        #expect(error?.description.contains("headless") == true)
    }
}
