import App
import Engine
import Foundation

/// Plain lines on stderr, for logs and pipes.
final class PlainRenderer: RunRenderer, @unchecked Sendable {
    private let lock = NSLock()
    private let started = Date()

    func start(run: RunRecord, graph: StepGraph, records: [StepID: StepRecord]) {
        write("run \(run.id): \(run.command.rawValue) \(run.planPath), \(graph.order.count) steps")
    }

    func event(_ event: Event) {
        guard let line = EventText.line(event) else { return }
        write(String(format: "[%6.1fs] ", Date().timeIntervalSince(started)) + line)
    }

    func note(_ text: String) { write(text) }

    func finish(_ report: RunReport) { write(EventText.summary(report)) }

    private func write(_ text: String) {
        lock.withLock { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }
}
