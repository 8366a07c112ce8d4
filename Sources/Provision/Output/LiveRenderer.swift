import App
import Engine
import Foundation

/// On a terminal: a line per finished step, and a status line redrawn in place with what is
/// running, for how long, and an ETA from earlier runs' durations.
final class LiveRenderer: RunRenderer, @unchecked Sendable {
    private let lock = NSLock()
    private var running: [StepID: Date] = [:]
    private var expected: [StepID: Double] = [:]
    private var finished: Set<StepID> = []
    private var total = 0
    private let parallelism: Double
    private var timer: DispatchSourceTimer?
    private let output = FileHandle.standardError

    /// A renderer whose ETA assumes `parallelism` steps at once (the run's effective parallelism).
    init(parallelism: Int) {
        self.parallelism = Double(max(1, parallelism))
    }

    func start(run: RunRecord, graph: StepGraph, records: [StepID: StepRecord]) {
        lock.withLock {
            total = graph.order.count
            for (id, record) in records { if let ms = record.durationMs { expected[id] = Double(ms) / 1000 } }
            emit("run \(run.id): \(run.command.rawValue) \(run.planPath), \(total) steps")
        }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 0.25, repeating: 0.25)
        timer.setEventHandler { [weak self] in self?.lock.withLock { self?.redraw() } }
        timer.resume()
        lock.withLock { self.timer = timer }
    }

    func event(_ event: Event) {
        lock.withLock {
            guard let step = event.step else { return }
            switch event.kind {
            case .stepStarted: running[step] = running[step] ?? Date()
            case .stepExpanded: total += event.message.split(separator: ",").count - 1
            case .stepSucceeded, .stepAdopted, .stepUnchanged, .stepFailed, .stepSkipped, .stepCancelled, .stepTornDown, .stepKept:
                running[step] = nil
                finished.insert(step)
            default: break
            }
            if let line = EventText.line(event) { emit(line) } else { redraw() }
        }
    }

    func note(_ text: String) { lock.withLock { emit(text) } }

    func finish(_ report: RunReport) {
        lock.withLock {
            timer?.cancel()
            running = [:]
            output.write(Data("\r\u{1B}[2K".utf8))
            emit(EventText.summary(report), status: false)
        }
    }

    /// Prints a permanent line above the status line. Caller holds the lock.
    private func emit(_ line: String, status: Bool = true) {
        output.write(Data(("\r\u{1B}[2K" + line + "\n").utf8))
        if status { redraw() }
    }

    /// Caller holds the lock.
    private func redraw() {
        guard !running.isEmpty else { return }
        let now = Date()
        let parts = running.sorted { $0.value < $1.value }.prefix(3).map { id, since in
            let elapsed = now.timeIntervalSince(since)
            return expected[id].map { String(format: "%@ %.0fs/~%.0fs", id.rawValue, elapsed, $0) } ?? String(format: "%@ %.0fs", id.rawValue, elapsed)
        }
        var line = "[\(finished.count)/\(max(total, finished.count))] running: " + parts.joined(separator: ", ")
        if running.count > 3 { line += " +\(running.count - 3)" }
        if let eta = eta(now: now) { line += String(format: " · ETA ~%.0fs", eta) }
        output.write(Data(("\r\u{1B}[2K" + String(line.prefix(160))).utf8))
    }

    /// Remaining expected work divided by the parallelism, when earlier runs give durations.
    private func eta(now: Date) -> Double? {
        guard !expected.isEmpty else { return nil }
        let known = expected.filter { !finished.contains($0.key) }
        let remaining = known.reduce(0.0) { sum, entry in
            sum + max(0, entry.value - (running[entry.key].map { now.timeIntervalSince($0) } ?? 0))
        }
        return remaining / min(parallelism, Double(max(1, running.count)))
    }
}
