@testable import App
import Foundation
@testable import Infra
@testable import PlanLanguage
import Testing

/// The plan's address ranges (`cluster.vpc_cidr`, `k3s.cluster_cidr`, `k3s.service_cidr`,
/// `cluster.allowed_cidrs`) and the K3s arguments they become.
@Suite struct NetworkPlanTests {
    static let head = "name: p\ntarget: aws\ncluster:\n  ami: ami-1\n  allowed_cidrs: [203.0.113.7/32]\n"
    static let k3s = "k3s:\n  version: v1.37.1+k3s1\n  deploy: false\n"

    @Test func shippedAWSPlanNamesBothRangesOutsideTheVPC() throws {
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        let cluster = try #require(plan.cluster), k3s = try #require(plan.k3s)
        #expect(cluster.vpcCIDR.description == "10.42.0.0/16" && cluster.nodeSubnet.description == "10.42.0.0/24")
        #expect(k3s.clusterCIDR.description == "10.52.0.0/16" && k3s.serviceCIDR.description == "10.53.0.0/16" && k3s.clusterDNS == "10.53.0.10")
        #expect(!k3s.clusterCIDR.overlaps(cluster.vpcCIDR) && !k3s.serviceCIDR.overlaps(cluster.vpcCIDR) && !k3s.clusterCIDR.overlaps(k3s.serviceCIDR))
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("plans/aws.yaml"), encoding: .utf8)
        #expect(text.contains("\n  cluster_cidr: 10.52.0.0/16") && text.contains("\n  service_cidr: 10.53.0.0/16"), "the shipped plan names both keys")
    }

    @Test func terraformGetsThePlansVPCRange() throws {
        let plan = try PlanLoader.parse(Data((Self.head + "  vpc_cidr: 10.60.0.0/16\n" + Self.k3s).utf8), path: "plans/t.yaml")
        #expect(plan.cluster?.vpcCIDR.description == "10.60.0.0/16" && plan.cluster?.nodeSubnet.description == "10.60.0.0/24")
    }

    @Test func overlappingRangesAreRefusedAtTheKeyNamingBothRanges() throws {
        let cases: [(String, Int, [String], String)] = [
            // K3s's own defaults: the pod range is the VPC's.
            ("  cluster_cidr: 10.42.0.0/16\n", 10, ["k3s.cluster_cidr 10.42.0.0/16 overlaps", "cluster.vpc_cidr 10.42.0.0/16 (the default; the VPC, whose node subnet is 10.42.0.0/24)"],
             "set k3s.cluster_cidr to a free range such as 10.52.0.0/16"),
            ("  service_cidr: 10.42.0.0/20\n", 10, ["k3s.service_cidr 10.42.0.0/20 overlaps", "cluster.vpc_cidr 10.42.0.0/16"], "set k3s.service_cidr"),
            ("  cluster_cidr: 10.60.0.0/16\n  service_cidr: 10.60.128.0/17\n", 11, ["k3s.service_cidr 10.60.128.0/17 overlaps k3s.cluster_cidr 10.60.0.0/16"],
             "ranges of their own"),
            ("  cluster_cidr: 10.52.0.0/30\n", 10, ["is a /30; it must be from /8 to /24"], "10.52.0.0/16"),
            ("  cluster_cidr: 10.52.0.0/23\n", 10, ["k3s.cluster_cidr 10.52.0.0/23 has room for 2 node(s), the plan has 3"], "each node takes a /24"),
            ("  service_cidr: 10.53.1.0/16\n", 10, ["has host bits set: the block it names is 10.53.0.0/16"], "write 10.53.0.0/16"),
            ("  service_cidr: 10.53.0.0/8\n", 10, ["host bits set"], "10.0.0.0/8"),
            ("  cluster_cidr: 10.300.0.0/16\n", 10, ["'10.300.0.0/16' in k3s.cluster_cidr is not an IPv4 CIDR block"], "like 10.52.0.0/16"),
        ]
        for (extra, line, phrases, hint) in cases {
            let error = try #require(planError(Self.head + "  worker_count: 2\n" + Self.k3s + extra), "\(extra) was accepted")
            #expect(error.line == line, "\(extra): \(error)")
            for phrase in phrases { #expect(error.message.contains(phrase), "\(extra): \(error)") }
            #expect(error.hint?.contains(hint) == true, "\(extra): \(error)")
        }
        // A VPC moved onto the default pod range is reported at the VPC's key (the only one the plan sets).
        let vpc = try #require(planError(Self.head + "  vpc_cidr: 10.53.0.0/16\n" + Self.k3s))
        #expect(vpc.line == 6 && vpc.message.contains("k3s.service_cidr 10.53.0.0/16 (the default) overlaps cluster.vpc_cidr 10.53.0.0/16"), "\(vpc)")
        let tooSmall = try #require(planError(Self.head + "  vpc_cidr: 10.42.0.0/24\n" + Self.k3s))
        #expect(tooSmall.line == 6 && tooSmall.message.contains("must be from /16 to /20"), "\(tooSmall)")
    }

    @Test func allowedCIDRsMustBeRealBlocks() throws {
        for (value, phrase, hint) in [("203.0.113.256/32", "is not an IPv4 CIDR block", "203.0.113.7/32"),
                                      ("203.0.113.7/33", "is not an IPv4 CIDR block", "203.0.113.7/32"),
                                      ("203.0.113.07/32", "is not an IPv4 CIDR block", "203.0.113.7/32"),
                                      ("203.0.113.7/24", "host bits set: the block it names is 203.0.113.0/24", "or 203.0.113.7/32 for that one address")] {
            let error = try #require(planError("name: p\ntarget: aws\ncluster:\n  ami: ami-1\n  allowed_cidrs: [\(value)]\n" + Self.k3s), "\(value)")
            #expect(error.line == 5 && error.message.contains(phrase) && error.hint?.contains(hint) == true, "\(value): \(error)")
        }
    }

    @Test func cidrArithmetic() throws {
        let vpc = try #require(IPv4CIDR("10.42.0.0/16"))
        #expect(vpc.subnet(newBits: 8, index: 0).description == "10.42.0.0/24" && vpc.subnet(newBits: 8, index: 3).description == "10.42.3.0/24")
        let inside = try #require(IPv4CIDR("10.42.255.0/24")), next = try #require(IPv4CIDR("10.43.0.0/16"))
        #expect(vpc.overlaps(inside) && !vpc.overlaps(next))
        let world = try #require(IPv4CIDR("0.0.0.0/0"))
        #expect(world.overlaps(vpc) && IPv4CIDR("10.53.0.0/16")?.host(10) == "10.53.0.10")
        for bad in ["10.42.0.0", "10.42.0/16", "10.42.0.0/", "a.b.c.d/8", "10.42.0.0/-1", " 10.42.0.0/16", "10.42.0.0/16/1"] {
            #expect(IPv4CIDR(bad) == nil, "\(bad)")
        }
    }

    @Test func tokenShortFormAndDatastorePasswordsStayOffTheCommandLine() throws {
        let short = try #require(planError(Self.head + Self.k3s + "  extra_args: [-t, abc]\n"))
        #expect(short.line == 9 && short.message.contains("may not set -t") && short.hint?.contains("k3s.token") == true, "\(short)")
        let cidr = try #require(planError(Self.head + Self.k3s + "  extra_args: [--cluster-cidr=10.60.0.0/16]\n"))
        #expect(cidr.hint == "set k3s.cluster_cidr instead", "\(cidr)")
        for endpoint in ["[--datastore-endpoint=postgres://k3s:hunter2@db.internal:5432/k3s]",
                         "['--datastore-endpoint=mysql://k3s:hunter2@tcp(db.internal:3306)/k3s']",
                         "['--datastore-endpoint=postgres://db.internal:5432/k3s?sslmode=require&password=hunter2']"] {
            let error = try #require(planError(Self.head + Self.k3s + "  extra_args: \(endpoint)\n"), "\(endpoint)")
            #expect(error.line == 9 && error.message.contains("a password in it") && error.hint?.contains("K3S_DATASTORE_ENDPOINT") == true, "\(endpoint): \(error)")
        }
        #expect(planError(Self.head + Self.k3s + "  extra_args: [--datastore-endpoint=postgres://k3s@db.internal:5432/k3s, --datastore-cafile=/etc/k3s/ca.pem]\n") == nil,
                "a user without a password (certificates or the env file carry the rest) is fine")
    }
}

/// `cluster.ami` is optional on aws: terraform then resolves Canonical's Ubuntu 24.04.
@Suite struct AMIPlanTests {
    @Test func awsWithoutAnAMIAsksTerraformToResolveUbuntuAndAMalformedOneIsRefused() throws {
        let text = "name: p\ntarget: aws\ncluster:\n  allowed_cidrs: [203.0.113.7/32]\nk3s: {version: v1.37.1+k3s1, deploy: false}\n"
        let plan = try PlanLoader.parse(Data(text.utf8), path: "plans/t.yaml")
        #expect(plan.cluster?.ami == nil)
        guard case .step(let node)? = try plan.graph(secrets: [:]).nodes[TerraformApplyStep.id], let step = node as? TerraformApplyStep else {
            Issue.record("no terraform.apply step")
            return
        }
        #expect(step.staticVariables["ami_id"] == .string(""), "empty: the module's data \"aws_ami\" lookup picks the image")
        let shipped = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        #expect(shipped.cluster?.ami == nil, "the shipped plan carries no placeholder AMI")
        let bad = try #require(planError("name: p\ntarget: aws\ncluster:\n  ami: ubuntu-24.04\n  allowed_cidrs: [203.0.113.7/32]\n"))
        #expect(bad.line == 4 && bad.message.contains("is not an AMI id") && bad.hint?.contains("leave cluster.ami out") == true, "\(bad)")
        let module = try String(contentsOf: repositoryRoot.appendingPathComponent("terraform/main.tf"), encoding: .utf8)
        #expect(module.contains(#"owners      = ["099720109477"]"#) && module.contains("ubuntu-noble-24.04-amd64-server-*"), "Canonical's owner and name")
    }
}
