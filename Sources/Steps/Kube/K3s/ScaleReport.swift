import Foundation

/// What `provision verify --scale` saw: a timeline of the scale-out and scale-in, and the outcome.
public struct ScaleReport: Sendable, Codable {
    /// One line of the timeline.
    public struct Event: Sendable, Codable, Equatable {
        /// Seconds since the check started.
        public var seconds: Double
        /// What happened: `rate 200 → 2000`, `desired 1 → 6`, `6/6 ready`, `rate restored (200)`.
        public var event: String

        /// `  12.3s  desired 1 → 6`.
        public var line: String { String(format: "%7.1fs  ", seconds) + event }
    }

    /// Whether the HPA scaled out and back in, and the rate was restored.
    public var passed: Bool = false
    public var timeline: [Event] = []
    /// The producers' RATE before the check (the ConfigMap's value), as written there.
    public var originalRate: String?
    /// The RATE the check set.
    public var raisedRate: String?
    /// Whether the original RATE is back in the ConfigMap (false also when it was never changed).
    public var rateRestored: Bool = false
    /// The HPA's desired replicas before the check.
    public var startReplicas: Int?
    /// The most desired replicas seen.
    public var peakReplicas: Int?
    /// The desired replicas when the check ended.
    public var finalReplicas: Int?
    /// Why it failed, with the HPA's conditions and what to check; nil when it passed.
    public var error: String?

    public init() {}
}
