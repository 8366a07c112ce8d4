import Engine
import Foundation
import JSON

/// Instant and range queries against Prometheus's HTTP API (`/api/v1/query`, `/api/v1/query_range`).
public struct PrometheusClient: Sendable {
    /// One series of a range query: its labels and `(time, value)` samples, finite values only.
    public struct Series: Sendable, Equatable {
        /// The series' labels (`topic`, `gpu`, …).
        public var labels: [String: String]
        /// Samples, oldest first.
        public var samples: [(at: Date, value: Double)]

        /// Same labels and the same samples.
        public static func == (a: Series, b: Series) -> Bool {
            a.labels == b.labels && a.samples.map(\.at) == b.samples.map(\.at) && a.samples.map(\.value) == b.samples.map(\.value)
        }
    }

    /// Base URL, like `http://127.0.1.1:9090`.
    public var baseURL: String
    /// The HTTP client (its timeout bounds each query).
    public var http: HTTPClient

    /// Creates a client for the Prometheus at `baseURL`.
    public init(baseURL: String, timeout: Duration = .seconds(10)) {
        self.baseURL = baseURL
        self.http = HTTPClient(timeout: timeout)
    }

    /// Evaluates `expression` from `start` to `end` every `step`.
    public func range(_ expression: String, start: Date, end: Date, step: Duration) async throws -> [Series] {
        let data = try await get("query_range", ["query": expression, "start": Self.time(start), "end": Self.time(end),
                                                 "step": String(format: "%.3f", max(step.seconds, 0.001))])
        return (data["result"]?.array ?? []).map { series in
            let samples = (series["values"]?.array ?? []).compactMap(Self.sample)
            var labels: [String: String] = [:]
            if case .object(let metric)? = series["metric"] { labels = metric.compactMapValues(\.string) }
            return Series(labels: labels, samples: samples)
        }
    }

    /// Evaluates `expression` at `time` (now when nil); the value of its first sample, nil when it has none.
    public func instant(_ expression: String, at time: Date? = nil) async throws -> Double? {
        var parameters = ["query": expression]
        if let time { parameters["time"] = Self.time(time) }
        let data = try await get("query", parameters)
        guard let value = data["result"]?.array?.first?["value"] else { return nil }
        return Self.sample(value)?.value
    }

    /// The expression of the loaded recording rule `record`, nil when Prometheus has no such rule.
    public func recordingRule(_ record: String) async throws -> String? {
        let data = try await get("rules", ["type": "record"])
        for group in data["groups"]?.array ?? [] {
            for rule in group["rules"]?.array ?? [] where rule["name"]?.string == record {
                return rule["query"]?.string
            }
        }
        return nil
    }

    private func get(_ endpoint: String, _ parameters: [String: String]) async throws -> JSONValue {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let query = parameters.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.value)" }.joined(separator: "&")
        let url = "\(baseURL)/api/v1/\(endpoint)?\(query)"
        let response = try await http.send("GET", url)
        let object = try? JSONDecoder().decode(JSONValue.self, from: response.body)
        guard response.status == 200, object?["status"]?.string == "success", let data = object?["data"], case .object = data else {
            let reason = object?["error"]?.string ?? "HTTP \(response.status)"
            throw HTTPError(url: url, reason: "Prometheus refused the query: \(reason)")
        }
        return data
    }

    /// A `[time, "value"]` pair of the API.
    private static func sample(_ pair: JSONValue) -> (at: Date, value: Double)? {
        guard let pair = pair.array, pair.count == 2, case .number(let time) = pair[0],
              let text = pair[1].string, let value = Double(text), value.isFinite else { return nil }
        return (Date(timeIntervalSince1970: time), value)
    }

    private static func time(_ date: Date) -> String { String(format: "%.3f", date.timeIntervalSince1970) }
}
