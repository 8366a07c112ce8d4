import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads a child's stdout and stderr until both close (or the child has exited and its pipes are
/// drained, when a grandchild keeps them open), then reaps the child. Runs on its own thread.
final class OutputReader: @unchecked Sendable {
    private let pid: pid_t
    private let fds: [Int32]
    private let redactor: Redactor
    private let log: StepLog?
    private let captureLimit: Int
    private var partial: [[UInt8]] = [[], []]
    private var captured: [UInt8] = []
    private var stderrTail: [String] = []

    init(pid: pid_t, stdout: Int32, stderr: Int32, redactor: Redactor, log: StepLog?, captureLimit: Int) {
        self.pid = pid
        self.fds = [stdout, stderr]
        self.redactor = redactor
        self.log = log
        self.captureLimit = captureLimit
    }

    func run() -> ProcessResult {
        var open = [true, true]
        var status: Int32 = 0
        var reaped = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open[0] || open[1] {
            var pollFDs = (0..<2).map { pollfd(fd: open[$0] ? fds[$0] : -1, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&pollFDs, 2, 200)
            if ready < 0 && errno != EINTR { break }
            for i in 0..<2 where open[i] && pollFDs[i].revents != 0 {
                let n = read(fds[i], &buffer, buffer.count)
                if n > 0 {
                    consume(buffer[0..<n], stream: i)
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    open[i] = false
                }
            }
            if ready == 0, !reaped, waitpid(pid, &status, WNOHANG) == pid {
                // The child is gone but something it started still holds the pipes: drain and stop.
                reaped = true
                for i in 0..<2 where open[i] {
                    _ = fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK)
                    while case let n = read(fds[i], &buffer, buffer.count), n > 0 { consume(buffer[0..<n], stream: i) }
                    open[i] = false
                }
            }
        }
        for fd in fds { close(fd) }
        flushPartials()
        if !reaped {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        let signal = status & 0x7f
        let output = redactor.redact(String(decoding: captured, as: UTF8.self))
        return ProcessResult(
            exitCode: signal == 0 ? (status >> 8) & 0xff : nil,
            signal: signal == 0 ? nil : signal,
            standardOutput: output,
            standardErrorTail: stderrTail.map(redactor.redact)
        )
    }

    private func consume(_ bytes: ArraySlice<UInt8>, stream: Int) {
        if stream == 0 && captured.count < captureLimit {
            captured.append(contentsOf: bytes.prefix(captureLimit - captured.count))
        }
        partial[stream].append(contentsOf: bytes)
        // Lines are redacted whole, so a secret split across two reads is still caught.
        guard let lastNewline = partial[stream].lastIndex(of: UInt8(ascii: "\n")) else {
            if partial[stream].count > 65536 { emit(partial[stream], stream: stream); partial[stream] = [] }
            return
        }
        let complete = partial[stream][..<lastNewline]
        emit(Array(complete), stream: stream)
        partial[stream].removeSubrange(...lastNewline)
    }

    private func flushPartials() {
        for i in 0..<2 where !partial[i].isEmpty {
            emit(partial[i], stream: i)
            partial[i] = []
        }
    }

    private func emit(_ bytes: [UInt8], stream: Int) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if stream == 1 {
            stderrTail.append(contentsOf: lines.filter { !$0.isEmpty })
            if stderrTail.count > 20 { stderrTail.removeFirst(stderrTail.count - 20) }
        }
        log?.write(lines)
    }
}
