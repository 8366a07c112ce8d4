import Engine
import Foundation
import Transport
import Verification

extension Workspace {
    /// The report of `run` (the last run when nil): its timeline from the store's events, the
    /// checks its `verify` step recorded, and, for a plan with the pipeline, the pipeline and its
    /// SLOs over the run's time range from Prometheus. An unreachable Prometheus leaves the charts
    /// empty with the reason; only a missing run is an error. Reads the store; takes no lock.
    /// - Parameter until: where the charts and SLOs end instead of the run's end (now, say: the
    ///   pipeline keeps running after `up`, and a run's last seconds are often its only ones).
    public func report(run requested: Int64? = nil, until: Date? = nil) async throws -> ReportDocument {
        guard hasStore else { throw ReportUnavailable.noRuns(plan: plan.name) }
        let store = try openStore()
        guard let last = try store.lastRun() else { throw ReportUnavailable.noRuns(plan: plan.name) }
        let id = requested ?? last.id
        let events = try store.events(run: id, step: nil, limit: 10_000_000)
        guard id >= 1, id <= last.id, let begin = events.first(where: { $0.kind == .runStarted }) else {
            throw ReportUnavailable.unknownRun(id, plan: plan.name, last: last.id)
        }
        // The run's own record for the last run; an earlier one is rebuilt from its events.
        let lifecycle = events.last { [.runStarted, .runResumed, .runFinished].contains($0.kind) }
        let finished = id == last.id ? last.finishedAt : lifecycle?.kind == .runFinished ? lifecycle?.at : nil
        var status = id == last.id ? last.status.rawValue : lifecycle?.kind == .runFinished ? lifecycle?.message ?? "finished" : "interrupted"
        if status == RunStatus.running.rawValue, try store.lockHolder().map({ $0.isDead }) ?? true {
            status = "interrupted (its process is gone; 'provision resume' continues it)"
        }
        let command = id == last.id ? last.command.rawValue : String(begin.message.split(separator: " ").first ?? "up")
        let timeline = RunTimeline.build(run: id, command: command, started: begin.at, finished: finished, events: events,
                                         dependencies: (try? dependencies(store)) ?? [:])
        let end = max(until ?? finished ?? events.last?.at ?? begin.at, begin.at)

        var notes: [String] = []
        var verify: [PipelineVerifier.Check] = []
        // A failed verify records no outputs (what the store holds is an earlier run's): its failures are on the timeline.
        let verified = events.contains { $0.step == VerifyStep.id && [.stepSucceeded, .stepAdopted].contains($0.kind) }
        if events.contains(where: { $0.step == VerifyStep.id && $0.kind == .stepFailed }) {
            notes.append("verify failed in run \(id): the failed checks are under 'Failures and retries'; 'provision logs verify' has its whole table")
        }
        if verified, let record = try store.steps()[VerifyStep.id] {
            if record.run == id {
                verify = VerifyStep.decode(record.outputs)
            } else {
                notes.append("run \(id)'s verify table is not kept: the store keeps a step's latest outputs only, and verify's are run \(record.run)'s "
                    + "('provision report --run \(record.run)' or 'provision verify --recorded' show them)")
            }
        }
        guard plan.runtime == .processes else {
            return ReportDocument(plan: plan.name, status: status, timeline: timeline, verify: verify, charts: [], objectives: [], notes: notes)
        }
        let measurements = await pipelineMeasurements()
        if measurements.prometheus == nil { notes.append(measurements.unavailable) }
        var document = ReportDocument(plan: plan.name, status: status, timeline: timeline, verify: verify,
                                      charts: await measurements.charts(from: begin.at, to: end),
                                      objectives: await measurements.objectives(from: begin.at, to: end), notes: notes)
        document.measured = [begin.at, end]
        return document
    }

    /// Each step's dependencies, fan-outs expanded as the store persisted them.
    private func dependencies(_ store: SQLiteRunStore) throws -> [String: [String]] {
        let expanded = try plan.graph(secrets: [:]).expanded(in: store)
        var dependencies: [String: [String]] = [:]
        for entry in expanded.entries {
            let (id, needs) = switch entry {
            case .step(let step): (step.id, step.dependencies)
            case .unexpanded(let fanOut): (fanOut.id, fanOut.allDependencies)
            }
            dependencies[id.rawValue] = expanded.resolve(needs).map(\.rawValue)
        }
        return dependencies
    }

    /// Prometheus on the recorded control plane, if it answers; otherwise why not.
    private func pipelineMeasurements() async -> PipelineMeasurements {
        let url: String
        do {
            guard let found = try pipelineURLs().first(where: { $0.name == "Prometheus" })?.url else {
                return PipelineMeasurements(prometheus: nil, unavailable: "the recorded cluster has no control-plane node, so there is no Prometheus to ask")
            }
            url = found
        } catch {
            return PipelineMeasurements(prometheus: nil, unavailable: "no Prometheus to ask: \(error)")
        }
        let prometheus = PrometheusClient(baseURL: url)
        do {
            _ = try await prometheus.instant("vector(1)")
            return PipelineMeasurements(prometheus: prometheus)
        } catch {
            return PipelineMeasurements(prometheus: nil, unavailable: """
                Prometheus at \(url) did not answer (\(error)); the charts are empty. \
                Is the sandbox up? 'provision status --audit' checks its services; 'provision up' restarts a stopped one
                """)
        }
    }
}
