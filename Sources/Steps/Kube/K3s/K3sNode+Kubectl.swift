import Foundation

extension K3sNode {
    /// `k3s kubectl` on this node, retrying transient API errors until `deadline` (the step's own,
    /// or `Kubectl.patience` from now).
    package func kubectl(until deadline: ContinuousClock.Instant? = nil) -> Kubectl {
        Kubectl(node: self, deadline: deadline ?? .now + Kubectl.patience)
    }
}
