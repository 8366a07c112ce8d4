@testable import App
import Engine
import Foundation
@testable import Infra
@testable import Kube
@testable import NodeRuntime
@testable import PlanLanguage
import Testing
@testable import Verification

/// One flow per target; the plan language's built-in ids are the ones the step types own.
@Suite struct FlowTests {
    func plan(_ target: Plan.Target) throws -> Plan {
        let cluster = switch target {
        case .local: ""
        case .sandbox: "cluster: {worker_count: 1}\n"
        case .aws: "cluster: {ami: ami-1, allowed_cidrs: [203.0.113.7/32]}\nk3s: {version: v1.33.4+k3s1}\n" + PlanImages.line
        }
        let steps = "steps:\n  - id: smoke\n" + (target.createsMachines ? "    needs: [node.ready]\n" : "") + "    exec: {run: 'true'}\n"
        return try PlanLoader.parse(Data("name: p\ntarget: \(target.rawValue)\n\(cluster)\(steps)".utf8), path: "/tmp/plans/p.yaml")
    }

    @Test func eachTargetsFlowBuildsExactlyTheBuiltInStepsThePlanLanguageNames() throws {
        for target in Plan.Target.allCases {
            let plan = try plan(target)
            let graph = try plan.graph(secrets: [:])
            #expect(Set(graph.order.map(\.rawValue)) == Set(plan.builtInSteps + ["smoke"]), "\(target)")
            #expect(graph.order.map(\.rawValue).prefix(target.builtInSteps.count) == target.builtInSteps[...], "\(target): machines first")
        }
        let runtime = [ArtifactsStep.id] + ServiceStep.Kind.allCases.map(\.id) + [VerifyStep.id]
        let k3s = [K3sServerStep.id, K3sJoinStep.id, ClusterReadyStep.id, KubeconfigStep.id, MonitoringStep.id,
                   StepID(DeployStep.Part.platform.rawValue), StepID(DeployStep.Part.workloads.rawValue), VerifyStep.id]
        #expect(Set(Plan.Target.reservedStepIDs) == Set(([SandboxCloudStep.id, SSHKeyStep.id, TerraformApplyStep.id, NodeReadyStep.id] + runtime + k3s).map(\.rawValue)))
        #expect(Set(Plan.Runtime.processes.builtInSteps) == Set(runtime.map(\.rawValue)), "the plan language names the runtime's steps as their types do")
        #expect(Plan.Runtime.k3s.builtInSteps == k3s.map(\.rawValue), "the plan language names the K3s steps as their types do, in order")
    }

    @Test func validationFindsACycleAmongThePlansOwnStepsWithoutBuildingThem() throws {
        let text = "name: p\ntarget: sandbox\ncluster: {worker_count: 1}\nsteps:\n"
            + "  - id: a\n    needs: [terraform.apply, b]\n    exec: {run: 'true'}\n"
            + "  - id: b\n    needs: [a]\n    exec: {run: 'true'}\n"
        do {
            _ = try PlanLoader.parse(Data(text.utf8), path: "/tmp/plans/p.yaml")
            Issue.record("a cycle was accepted")
        } catch let error as PlanError {
            #expect(error.line == 5 && error.message.contains("a → b → a"), "\(error)")
        }
        #expect(try StepGraph.order([("x", []), ("y", ["x"])]) == ["x", "y"])
    }
}
