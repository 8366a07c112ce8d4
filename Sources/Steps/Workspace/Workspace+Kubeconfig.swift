import Foundation
import Kube

extension Workspace {
    /// The kubeconfig the `kubeconfig` step writes for this plan (`state/<plan>/kubeconfig`, 0600).
    public var kubeconfigPath: URL { KubeconfigStep.path(stateDirectory) }
}
