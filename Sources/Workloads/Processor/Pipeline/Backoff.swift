import Foundation
import WorkloadKit

/// Repeats an operation with exponential backoff (100 ms doubling to 5 s) until it succeeds, a stop
/// is requested, or the attempts run out. Sleeps in short slices so that SIGTERM is honoured
/// within a fraction of a second even while an outage lasts.
struct Backoff {
    let metrics: ProcessorMetrics
    /// Gives up when this asks for a stop; nil: only `attempts` ends the retries.
    var shutdown: ShutdownSignal?

    private var stopping: Bool { shutdown?.isRequested ?? false }

    /// Runs `body` until it succeeds; false when it gave up (a stop was requested, or `attempts`
    /// failed). Each failure is counted and logged with `what`.
    @discardableResult
    func retrying(_ what: String, attempts: Int = .max, _ body: () throws -> Void) -> Bool {
        var delay = 0.1
        for attempt in 1...attempts {
            do {
                try body()
                return true
            } catch {
                metrics.writeFailed()
                let last = attempt == attempts || stopping
                FileHandle.standardError.write(Data("processor: \(what) failed (\(error)); \(last ? "giving up" : "retrying in \(delay)s")\n".utf8))
                if last { return false }
                let until = Date().addingTimeInterval(delay)
                while Date() < until && !stopping { Thread.sleep(forTimeInterval: 0.05) }
                if stopping { return false }
                delay = min(delay * 2, 5)
            }
        }
        return false
    }
}
