import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Catches SIGINT and SIGTERM on a dispatch queue and counts them.
final class SignalTrap: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private var count = 0
    private let lock = NSLock()

    init(_ handler: @escaping @Sendable (Int) -> Void) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self, source] in
                guard let self else { return }
                // Signals that arrive before the handler runs are coalesced into one event: count them all.
                let received = max(1, Int(source.data))
                let n = self.lock.withLock { self.count += received; return self.count }
                handler(n)
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
