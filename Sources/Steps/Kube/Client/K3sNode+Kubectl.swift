import Foundation

extension K3sNode {
    /// The typed Kubernetes client on this node, retrying transient API errors until `deadline`
    /// (the step's own, or `Kubectl.patience` from now).
    package func kube(until deadline: ContinuousClock.Instant? = nil) -> Kubectl {
        Kubectl(node: self, deadline: deadline ?? .now + Kubectl.patience)
    }
}
