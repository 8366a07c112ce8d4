import Foundation

/// How `runtime: k3s` installs K3s on the nodes (the plan's `k3s:` section).
public struct K3sSpec: Sendable, Equatable {
    /// The pinned K3s release (`v1.37.1+k3s1`); every node runs exactly this one.
    public var version: String
    /// The name of the plan secret (`secrets:`) that is the join token; nil lets the server
    /// generate one, which each join reads from the server over SSH when it needs it.
    public var tokenSecret: String?
    /// Extra arguments of `k3s server`.
    public var extraArgs: [String] = []
    /// The pods' addresses (`--cluster-cidr`; each node takes a /24 of it). Not K3s's default
    /// 10.42.0.0/16, which is the VPC's: it must overlap neither the VPC nor `serviceCIDR`, and is
    /// fixed at the first server's start (changing it later means a new cluster).
    public var clusterCIDR = IPv4CIDR("10.52.0.0/16")!
    /// The Services' addresses (`--service-cidr`; the cluster DNS is its 10th address). Not K3s's
    /// default 10.43.0.0/16, for the same reasons as `clusterCIDR`.
    public var serviceCIDR = IPv4CIDR("10.53.0.0/16")!
    /// Packaged components the server leaves out (`--disable`); metrics-server must stay (the HPA needs it).
    public var disable: [String] = ["traefik"]
    /// How long every planned node may take to be Ready (and the core deployments available).
    public var readyTimeout: Duration = .seconds(300)
    /// The deadline of one install (server or agent): K3s's install script blocks for ever when
    /// an agent cannot join.
    public var installTimeout: Duration = .seconds(300)
    /// How many workers a rolling upgrade (a new `version`, or changed flags) takes out of service
    /// at once: cordoned, drained, reinstalled, Ready on the new version, uncordoned.
    public var maxUnavailable = 1
    /// How long one node's drain may take (evictions a PodDisruptionBudget refuses are retried
    /// until then); the node's step then fails naming the pods and budgets that blocked it.
    public var drainTimeout: Duration = .seconds(300)
    /// Merge the cluster's kubeconfig into `kubeconfigPath` under the plan's name.
    public var mergeKubeconfig = false
    /// The kubeconfig `merge_kubeconfig` merges into (`~` is the home directory).
    public var kubeconfigPath = "~/.kube/config"
    /// Files to install from this machine instead of downloading (needed where nodes have no egress).
    public var airgap: Airgap?
    /// Without `airgap`: the sha256 (lowercase hex) of K3s's install script at the pinned release's
    /// tag; each node downloads the script and runs it only if it has this digest (none: it runs nothing).
    public var installScriptSHA256: String?
    /// Whether `platform` and `workloads` deploy the k8s/ tree after `cluster.ready`.
    public var deploy = true
    /// The k8s/ tree (kustomize bases and overlays), relative to the plan.
    public var manifests = "../k8s"
    /// The overlay under `manifests`/overlays that is rendered.
    public var overlay = "aws"
    /// How long the deployed workloads may take to roll out.
    public var rolloutTimeout: Duration = .seconds(300)
    /// Whether the `monitoring` step (with `deploy`) installs kube-prometheus-stack, Loki and Alloy
    /// through K3s's Helm controller, and applies the monitoring namespace, before `platform`.
    public var monitoring = true
    /// The `monitoring` step's deadline: every chart's `helm-install-<name>` Job complete.
    public var monitoringTimeout: Duration = .seconds(600)
    /// Whether `verify` (with `deploy` and `monitoring`) checks the pipeline end to end after
    /// `workloads`, as the sandbox's does.
    public var verify = true
    /// How long `verify`'s checks that need time (first scrapes, documents, rates) may take to pass.
    public var verifyTimeout: Duration = .seconds(150)

    /// How this machine reaches the API server: `public` (the control plane's public address,
    /// port 6443 open to `allowed_cidrs`) or `forward` (the kubeconfig's server is
    /// `https://127.0.0.1:<apiLocalPort>`, which `provision port-forward api` holds open through SSH).
    public var apiAccess: APIAccess = .public
    /// The local port of `api_access: forward` (and `provision port-forward api`'s default).
    public var apiLocalPort = 6443

    /// `k3s.api_access`.
    public enum APIAccess: String, Sendable, Equatable, CaseIterable {
        /// Straight to the control plane's public address.
        case `public`
        /// Through `provision port-forward api` on 127.0.0.1.
        case forward
    }

    /// K3s's airgap install: the binary, the images tarball and the install script, from here.
    public struct Airgap: Sendable, Equatable {
        /// K3s's install script (get.k3s.io), run with `INSTALL_K3S_SKIP_DOWNLOAD=true`.
        public var installScript: String
        /// The `k3s` binary, uploaded to /usr/local/bin/k3s.
        public var binary: String
        /// The images tarball, uploaded to /var/lib/rancher/k3s/agent/images/ (optional).
        public var images: String?

        public init(installScript: String, binary: String, images: String? = nil) {
            self.installScript = installScript
            self.binary = binary
            self.images = images
        }
    }

    /// What `--disable` accepts.
    public static let disableable = ["coredns", "servicelb", "traefik", "local-storage", "metrics-server"]
    /// Server arguments the steps set themselves (or that would put the token on a command line;
    /// `-t` is `--token`'s short form, `-s` `--server`'s).
    public static let reservedArgs = ["--token", "-t", "--agent-token", "--token-file", "--server", "-s", "--node-name", "--write-kubeconfig-mode",
                                      "--cluster-init", "--cluster-cidr", "--service-cidr", "--cluster-dns"]
    /// The plan key that sets a reserved argument instead, where there is one.
    public static let reservedArgKeys = ["--token": "k3s.token", "-t": "k3s.token", "--agent-token": "k3s.token", "--token-file": "k3s.token",
                                         "--cluster-cidr": "k3s.cluster_cidr", "--service-cidr": "k3s.service_cidr",
                                         "--cluster-dns": "k3s.service_cidr (the DNS is its 10th address)"]

    /// The cluster DNS Service's address: the 10th of `serviceCIDR`, as K3s's own default (10.43.0.10) is of its default range.
    public var clusterDNS: String { serviceCIDR.host(10) }

    public init(version: String) {
        self.version = version
    }
}

extension K3sSpec {
    /// K3s's install script at release `version`'s tag (`v1.37.1+k3s1` → `.../v1.37.1%2Bk3s1/install.sh`),
    /// as `k3s.install_script_sha256` pins it.
    package static func installScriptURL(version: String) -> String {
        "https://raw.githubusercontent.com/k3s-io/k3s/\(version.replacingOccurrences(of: "+", with: "%2B"))/install.sh"
    }

    /// Whether `text` is a sha256 as the plan writes it (64 hex digits).
    package static func isDigest(_ text: String) -> Bool {
        text.count == 64 && text.allSatisfy(\.isHexDigit)
    }
}
