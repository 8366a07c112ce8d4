import App
import ArgumentParser
import Engine
import Foundation
import JSON
import PlanLanguage

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a plan without running anything.",
        discussion: "Reports the first problem with file:line:column, the offending text and what to write instead; exit code 2 when the plan is invalid."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await withExitCodes(json: options.json) {
            let plan = try PlanLoader.load(path: options.plan)
            let graph = try plan.graph(secrets: [:])
            let fanOuts = plan.steps.filter { $0.forEach != nil }.count
            if options.json {
                let object: JSONValue = ["plan": .string(plan.path), "name": .string(plan.name), "valid": true, "steps": .int(graph.order.count),
                                         "fan_outs": .int(fanOuts)]
                print(String(decoding: object.compactData, as: UTF8.self))
            } else {
                print("\(plan.path): ok — plan '\(plan.name)', target \(plan.target.rawValue), \(graph.order.count) steps (\(fanOuts) fan-outs)")
            }
        }
    }
}
