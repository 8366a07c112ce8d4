@testable import App
import Engine
import Foundation
@testable import PlanLanguage
import Testing

/// The `cluster:` and `sandbox:` sections and the built-in steps of cluster targets.
@Suite struct ClusterPlanTests {
    func parse(_ text: String) throws -> Plan {
        try PlanLoader.parse(Data(text.utf8), path: "plans/t.yaml")
    }

    func error(_ text: String) throws -> PlanError {
        do {
            _ = try parse(text)
        } catch let error as PlanError {
            return error
        }
        throw StepFailure("the plan was accepted")
    }

    @Test func sandboxPlanLoadsWithDefaultsAndBuiltInSteps() throws {
        let plan = try PlanLoader.load(path: repositoryRoot.appendingPathComponent("plans/sandbox.yaml").path)
        #expect(plan.target == .sandbox && plan.steps.isEmpty)
        let cluster = try #require(plan.cluster)
        #expect(cluster.workerCount == 2 && cluster.allowedCIDRs == ["127.0.0.0/8"])
        #expect(plan.sandbox?.initSystem == .systemd && plan.sandbox?.nodeImage == "../.tools/node-image-systemd",
                "README command one boots systemd nodes whose cloud-init runs their user data, as the aws target's Ubuntu does")
        let graph = try plan.graph(secrets: [:])
        #expect(graph.order.map(\.rawValue).prefix(4) == ["sandbox.cloud", "ssh.key", "terraform.apply", "node.ready"])
        #expect(plan.runtime == .processes && Set(graph.order.map(\.rawValue).dropFirst(4)) == Set(Plan.Runtime.processes.builtInSteps),
                "the sandbox plan runs the pipeline (runtime: processes) after its machines")
    }

    @Test func ownStepsMayNeedBuiltInStepsButNotReuseTheirIds() throws {
        let base = "name: p\ntarget: sandbox\ncluster: {worker_count: 1}\nsteps:\n"
        let plan = try parse(base + "  - id: smoke\n    needs: [node.ready]\n    exec: {run: 'true'}\n")
        #expect(plan.steps.map(\.id) == ["smoke"])
        let e = try error(base + "  - id: ssh.key\n    exec: {run: 'true'}\n")
        #expect(e.line == 5 && e.message.contains("built-in"))
    }

    @Test func awsPlanNeedsAllowedCIDRsAndAnAMI() throws {
        let e = try error("name: p\ntarget: aws\ncluster: {worker_count: 1}\n")
        #expect(e.line == 3 && e.message.contains("missing the required key 'allowed_cidrs'"))
    }

    @Test func openingAdminPortsToTheWorldNeedsAnExplicitFlag() throws {
        let world = "name: p\ntarget: aws\ncluster:\n  ami: ami-1\n  allowed_cidrs: [0.0.0.0/0]\n"
        let e = try error(world)
        #expect(e.line == 5 && e.message.contains("0.0.0.0/0") && e.hint?.contains("allow_world_admin") == true)
        let allowed = try parse(world + "  allow_world_admin: true\nk3s: {version: v1.33.4+k3s1}\n" + PlanImages.line)
        #expect(allowed.cluster?.allowWorldAdmin == true)
        let bad = try error("name: p\ntarget: aws\ncluster:\n  ami: ami-1\n  allowed_cidrs: [10.0.0.0]\n")
        #expect(bad.message.contains("not an IPv4 CIDR block") && bad.hint == "write it like 203.0.113.7/32")
    }

    @Test func clusterSectionsAreRejectedWhereTheyDoNotApply() throws {
        let local = try error("name: p\ncluster: {worker_count: 1}\nsteps:\n  - id: a\n    exec: {run: 'true'}\n")
        #expect(local.line == 2 && local.message.contains("only applies to the sandbox and aws targets"))
        let aws = try error("name: p\ntarget: aws\ncluster: {ami: a, allowed_cidrs: [1.2.3.4/32]}\nsandbox: {cloud_init_delay: 1s}\n")
        #expect(aws.line == 4 && aws.message.contains("only applies to the sandbox target"))
        let typo = try error("name: p\ntarget: sandbox\ncluster: {worker_cont: 1}\n")
        #expect(typo.hint?.hasPrefix("did you mean 'worker_count'?") == true)
        let range = try error("name: p\ntarget: sandbox\ncluster: {worker_count: 99}\n")
        #expect(range.line == 3)
    }
}
