@testable import App
import Engine
import Foundation
@testable import Kube
@testable import PlanLanguage
import Testing

/// The plan's `k3s:` section: what it accepts, and a file:line error with a hint for each bad value.
@Suite struct K3sPlanTests {
    static let head = "name: p\ntarget: aws\ncluster: {ami: ami-1, allowed_cidrs: [203.0.113.7/32]}\n" + PlanImages.line

    func error(_ text: String) -> PlanError? { planError(text) }

    @Test func awsPlanInRepositoryLoadsWithEveryK3sField() throws {
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/aws.yaml").path)
        #expect(plan.target == .aws && plan.runtime == .k3s)
        let k3s = try #require(plan.k3s)
        #expect(k3s.version == "v1.37.1+k3s1", "a Kubernetes minor still supported (1.33 ended 2026-06-28)")
        #expect(k3s.disable == ["traefik"])
        #expect(k3s.mergeKubeconfig)
        let graph = try plan.graph(secrets: [:])
        let ids = graph.order.map(\.rawValue)
        #expect(ids.suffix(8) == ["k3s.server", "k3s.join", "cluster.ready", "kubeconfig", "monitoring", "platform", "workloads", "verify"], "\(ids)")
    }

    @Test func defaultsAndRuntimeSeparationFromTarget() throws {
        let plan = try PlanLoader.parse(Data((Self.head + "k3s: {version: v1.33.4+k3s1}\n").utf8), path: "plans/t.yaml")
        #expect(plan.runtime == .k3s, "aws defaults to k3s")
        #expect(plan.k3s?.disable == ["traefik"] && plan.k3s?.tokenSecret == nil && plan.k3s?.mergeKubeconfig == false)
        let processes = try #require(error(Self.head + "runtime: processes\n"))
        #expect(processes.line == 5 && processes.message.contains("sandbox nodes only"))
    }

    @Test func badValuesPointAtTheirLineWithAHint() throws {
        let cases: [(String, Int, String)] = [
            ("runtime: k3s\n", 5, "needs a 'k3s:' section"),
            ("k3s:\n  disable: [traefik]\n", 6, "missing the required key 'version'"),
            ("k3s:\n  version: stable\n", 6, "is not a K3s release"),
            ("k3s:\n  version: v1.33.4+k3s1\n  disable: [metrics-server]\n", 7, "HorizontalPodAutoscaler needs"),
            ("k3s:\n  version: v1.33.4+k3s1\n  disable: [trafik]\n", 7, "which K3s does not package"),
            ("k3s:\n  version: v1.33.4+k3s1\n  token: missing\n", 7, "not in 'secrets:'"),
            ("k3s:\n  version: v1.33.4+k3s1\n  extra_args: [--token=abc]\n", 7, "may not set --token"),
            ("k3s:\n  version: v1.33.4+k3s1\n  ready_timeout: soon\n", 7, "must be a duration"),
            ("k3s:\n  version: v1.33.4+k3s1\n  airgap: {binary: k3s}\n", 7, "missing the required key 'install_script'"),
            ("k3s:\n  version: v1.33.4+k3s1\n  merge_kubeconfig: maybe\n", 7, "must be true or false"),
            ("k3s:\n  version: v1.33.4+k3s1\n  verison: x\n", 7, "unknown key 'verison'"),
        ]
        for (section, line, message) in cases {
            let e = try #require(error(Self.head + section), "\(section)")
            #expect(e.line == line && e.message.contains(message), "\(section): \(e)")
            #expect(e.hint != nil, "\(section): a hint")
        }
        let disabled = try #require(error(Self.head + "k3s:\n  version: v1.33.4+k3s1\n  disable: [trafik]\n"))
        #expect(disabled.hint?.hasPrefix("did you mean 'traefik'?") == true)
        let sandbox = try #require(error("name: p\ntarget: sandbox\nruntime: k3s\ncluster: {worker_count: 1}\nk3s:\n  version: v1.33.4+k3s1\n"))
        #expect(sandbox.line == 6 && sandbox.message.contains("needs 'k3s.airgap'"), "\(sandbox)")
        let notK3s = try #require(error("name: p\ntarget: sandbox\nruntime: none\ncluster: {worker_count: 1}\nk3s: {version: v1.33.4+k3s1}\n"))
        #expect(notK3s.line == 5 && notK3s.message.contains("only applies to 'runtime: k3s'"))
    }

    @Test func awsNeedsPinnedPipelineImagesUnlessItDeploysNothing() throws {
        let bare = "name: p\ntarget: aws\ncluster: {ami: ami-1, allowed_cidrs: [203.0.113.7/32]}\nk3s: {version: v1.33.4+k3s1}\n"
        let missing = try #require(error(bare))
        #expect(missing.line == 2 && missing.message.contains("needs 'pipeline.images'") && missing.hint?.contains("k3s.deploy: false") == true, "\(missing)")
        #expect(error("name: p\ntarget: aws\ncluster: {ami: ami-1, allowed_cidrs: [203.0.113.7/32]}\nk3s: {version: v1.33.4+k3s1, deploy: false}\n") == nil)
        let plan = try PlanLoader.parse(Data((Self.head + "k3s: {version: v1.33.4+k3s1}\n").utf8), path: "plans/t.yaml")
        #expect(plan.pipeline?.images == PipelineSpec.Images(processor: PlanImages.processor, producer: PlanImages.producer))
        let cases: [(String, String)] = [
            ("ghcr.io/acme/processor", "not an image reference pinned by tag or digest"),
            ("ghcr.io/acme/processor:latest", "moving tag 'latest'"),
            ("ghcr.io/acme/processor@sha256:abc", "not an image reference pinned"),
            ("GHCR.io/Acme/processor:v1", "not an image reference pinned"),
            ("ghcr.io/acme/processor:v1 --privileged", "not an image reference pinned"),
        ]
        for (reference, message) in cases {
            let text = bare + "pipeline:\n  images:\n    processor: '\(reference)'\n    producer: ghcr.io/acme/producer:v1\n"
            let e = try #require(error(text), "\(reference)")
            #expect(e.line == 7 && e.message.contains(message) && e.hint?.contains("REGISTRY/REPOSITORY:TAG") == true, "\(reference): \(e)")
        }
        let half = try #require(error(bare + "pipeline: {images: {processor: 'ghcr.io/a/p:v1'}}\n"))
        #expect(half.message.contains("missing the required key 'producer'"), "\(half)")
        #expect(PipelineSpec.Images.problem("registry.example.com:5000/team/producer:2026.12.01-rc1") == nil)
    }

    @Test func installScriptSHA256IsADigestForTheOnlineInstallOnlyAndPointsAtItsLine() throws {
        let digest = String(repeating: "ab", count: 32)
        let plan = try PlanLoader.parse(Data((Self.head + "k3s: {version: v1.37.1+k3s1, install_script_sha256: '\(digest.uppercased())'}\n").utf8), path: "plans/t.yaml")
        #expect(plan.k3s?.installScriptSHA256 == digest)
        #expect(try PlanLoader.parse(Data((Self.head + "k3s: {version: v1.37.1+k3s1}\n").utf8), path: "plans/t.yaml").k3s?.installScriptSHA256 == nil)
        let short = try #require(error(Self.head + "k3s:\n  version: v1.37.1+k3s1\n  install_script_sha256: abc123\n"))
        #expect(short.line == 7 && short.message.contains("must be a sha256") && short.hint?.contains("v1.37.1%2Bk3s1/install.sh | sha256sum") == true, "\(short)")
        let airgap = try #require(error(Self.head + "k3s:\n  version: v1.37.1+k3s1\n  install_script_sha256: \(digest)\n  airgap: {install_script: i.sh, binary: k3s}\n"))
        #expect(airgap.line == 7 && airgap.message.contains("with k3s.airgap nothing is downloaded"), "\(airgap)")
    }

    @Test func kafkaReplicasTakesOneOrThreeAndRefusesOtherCountsAtTheirLine() throws {
        let plan = { (count: String) in "name: p\ntarget: aws\ncluster: {ami: ami-1, allowed_cidrs: [203.0.113.7/32]}\nk3s: {version: v1.37.1+k3s1}\n"
            + "pipeline:\n  images: {processor: '\(PlanImages.processor)', producer: '\(PlanImages.producer)'}\n  kafka_replicas: \(count)\n" }
        #expect(try PlanLoader.parse(Data(plan("3").utf8), path: "plans/t.yaml").pipeline?.kafkaReplicas == 3)
        #expect(try PlanLoader.parse(Data(plan("1").utf8), path: "plans/t.yaml").pipeline?.kafkaReplicas == 1)
        #expect(try PlanLoader.parse(Data((Self.head + "k3s: {version: v1.37.1+k3s1}\n").utf8), path: "plans/t.yaml").pipeline?.kafkaReplicas == 1)
        for count in ["2", "4", "0", "three"] {
            let e = try #require(error(plan(count)), "\(count)")
            #expect(e.line == 7, "\(count): \(e)")
            #expect(e.description.hasPrefix("plans/t.yaml:7:"), "\(e)")
            #expect(e.message.contains("pipeline.kafka_replicas"), "\(count): \(e)")
        }
        #expect(error(plan("2"))?.message == "pipeline.kafka_replicas must be 1 or 3, found 2")
    }

    @Test func tokenNamesASecretAndNeverEntersAnyInput() throws {
        let text = Self.head + "secrets: {join: {env: JOIN_TOKEN}}\nk3s: {version: v1.33.4+k3s1, token: join}\n"
        let plan = try PlanLoader.parse(Data(text.utf8), path: "plans/t.yaml")
        #expect(plan.k3s?.tokenSecret == "join")
        let graph = try plan.graph(secrets: ["join": "planted-token-value"])
        for id in graph.order {
            if case .step(let step)? = graph.nodes[id] { #expect(!step.inputs.contains("planted-token-value"), "\(id)") }
        }
    }

    @Test func apiAccessIsPublicByDefaultForwardNamesTheLocalPortAndABadValuePointsAtItsLine() throws {
        let plain = try PlanLoader.parse(Data((Self.head + "k3s: {version: v1.33.4+k3s1}\n").utf8), path: "plans/t.yaml")
        #expect(plain.k3s?.apiAccess == .public && plain.k3s?.apiLocalPort == 6443)
        let text = Self.head + "k3s:\n  version: v1.33.4+k3s1\n  api_access: forward\n  api_local_port: 16443\n"
        let forward = try PlanLoader.parse(Data(text.utf8), path: "plans/t.yaml")
        #expect(forward.k3s?.apiAccess == .forward && forward.k3s?.apiLocalPort == 16443)
        #expect(KubeconfigStep.forwardedServer(port: 16443) == "https://127.0.0.1:16443")
        let inputs = { (plan: Plan) throws -> String in
            guard case .step(let step)? = try plan.graph(secrets: [:]).nodes[KubeconfigStep.id] else { return "" }
            return step.inputs
        }
        #expect(try inputs(forward).hasSuffix("api=forward:16443") && !(try inputs(plain)).contains("api="), "a new access mode rewrites the kubeconfig; public keeps its inputs")

        let bad = try #require(error(Self.head + "k3s:\n  version: v1.33.4+k3s1\n  api_access: forwrd\n"))
        #expect(bad.line == 7 && bad.message.contains("k3s.api_access 'forwrd' is neither public nor forward"), "\(bad)")
        #expect(bad.hint?.hasPrefix("did you mean 'forward'?") == true, "\(bad)")
        let port = try #require(error(Self.head + "k3s:\n  version: v1.33.4+k3s1\n  api_local_port: 70000\n"))
        #expect(port.line == 7 && port.message.contains("k3s.api_local_port must be from 1 to 65535"), "\(port)")
    }
}
