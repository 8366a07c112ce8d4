import Foundation
import Synchronization

/// Turns SIGINT and SIGTERM into a flag a workload's main loop polls, so it can finish its batch,
/// flush or commit, and exit cleanly instead of dying mid-write.
public final class ShutdownSignal: @unchecked Sendable {  // `sources` is written only in init
    private let requested = Atomic<Bool>(false)
    private var sources: [DispatchSourceSignal] = []

    /// Starts listening; the signals no longer terminate the process.
    public init() {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.requested.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    /// Whether a stop was asked for.
    public var isRequested: Bool { requested.load(ordering: .relaxed) }
}
