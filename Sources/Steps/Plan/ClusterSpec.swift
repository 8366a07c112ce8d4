import Foundation

/// The machines a `sandbox` or `aws` plan creates (the plan's `cluster:` section).
public struct ClusterSpec: Sendable, Equatable {
    /// AWS region.
    public var region = "us-east-1"
    /// Worker nodes besides the one control plane.
    public var workerCount = 2
    /// EC2 instance type.
    public var instanceType = "t3.large"
    /// AMI of every node. Without one, aws nodes run Canonical's newest Ubuntu 24.04 amd64 image in
    /// the region (terraform looks it up; its `ami` output records which); the sandbox uses one its EC2 API knows.
    public var ami: String?
    /// The VPC's range (terraform's `vpc_cidr`); the nodes' subnet is its first /+8 (`nodeSubnet`).
    public var vpcCIDR = IPv4CIDR("10.42.0.0/16")!
    /// Who may reach SSH and 6443 (CIDR blocks).
    public var allowedCIDRs: [String] = []
    /// Allow 0.0.0.0/0 in `allowedCIDRs` deliberately.
    public var allowWorldAdmin = false
    /// Root volume size in GiB.
    public var rootVolumeGB = 40
    /// SSH login user on the nodes.
    public var sshUser: String?
    /// Reach workers through the control plane (ProxyJump) at their private address, so only
    /// the control plane needs to be reachable from here.
    public var workersViaBastion = false
    /// How long a node may take to answer SSH and finish cloud-init.
    public var nodeReadyTimeout: Duration = .seconds(600)
    /// The Terraform root module, relative to the plan file.
    public var terraformDirectory = "../terraform"

    public init() {}

    /// The nodes' subnet, as terraform's network module cuts it: `cidrsubnet(vpc_cidr, 8, 0)`.
    public var nodeSubnet: IPv4CIDR { vpcCIDR.subnet(newBits: 8, index: 0) }
}

/// Settings only the `sandbox` target has (the plan's `sandbox:` section).
public struct SandboxSpec: Sendable, Equatable {
    /// How long after boot a node's cloud-init status turns `done`.
    public var cloudInitDelay: Duration = .seconds(2)
    /// What the nodes boot (`sandbox.init`): OpenRC (the default) or systemd.
    public var initSystem: InitSystem = .openrc
    /// The overlay layer with cloud-init installed (built by scripts/bootstrap), relative to the plan file;
    /// `../.tools/node-image-systemd` by default for systemd nodes.
    public var nodeImage = "../.tools/node-image"
    /// Where the `producer` and `processor` builds the nodes run are, relative to the plan file.
    public var workloads = "../.build/release"
    /// The librdkafka the workloads load on the nodes (2.x; Debian's 2.0.2 cannot talk to Tansu).
    public var librdkafka = "../.tools/lib/librdkafka.so.1"
    /// The alert and recording rules the sandbox's Prometheus evaluates: the k8s/ PrometheusRule's groups.
    public var rules = "../k8s/base/monitoring/rules/pipeline-rules.yaml"
    /// Whether the broker keeps its log in an S3 bucket of the sandbox's moto (surviving its restart
    /// and the node's reboot) rather than in memory. Durable costs CPU: moto serves every request.
    public var durableBroker = true

    public init() {}
}
