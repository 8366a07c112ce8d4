/// How often and how patiently the executor applies a step.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Total attempts, the first included (at least 1).
    public var attempts: Int
    /// Delay before the second attempt; each later delay doubles, up to `maxBackoff`.
    public var backoff: Duration
    /// Upper bound of one delay.
    public var maxBackoff: Duration
    /// Longest one attempt may run before it is cancelled and counted as failed; nil means no limit.
    public var timeout: Duration?

    /// Creates a policy.
    public init(attempts: Int = 1, backoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(30), timeout: Duration? = nil) {
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.timeout = timeout
    }

    /// The delay after failed attempt `attempt` (1-based): exponential, capped, with "equal jitter"
    /// (half fixed, half random) so that parallel steps retrying together spread out.
    public func delay(after attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let base = backoff.seconds * pow2(attempt - 1)
        let capped = min(base, maxBackoff.seconds)
        return .milliseconds(Int((capped / 2 + capped / 2 * random) * 1000))
    }

    private func pow2(_ n: Int) -> Double { n <= 0 ? 1 : Double(1 << min(n, 30)) }
}

extension Duration {
    /// The duration in (fractional) seconds.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
