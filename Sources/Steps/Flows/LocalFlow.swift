import Engine
import PlanLanguage

/// `target: local`: only the plan's own steps, on this machine.
package enum LocalFlow {
    /// No built-in steps.
    static func nodes(_ plan: Plan) -> [StepGraph.Node] { [] }
}
