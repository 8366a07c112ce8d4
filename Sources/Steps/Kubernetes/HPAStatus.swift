import Foundation

/// A HorizontalPodAutoscaler (`autoscaling/v2`) as `kubectl get -o json` answers it: its bounds,
/// the replicas its controller computed and the conditions that say why it does or does not scale.
public struct HPAStatus: Sendable, Equatable {
    /// One entry of `status.conditions`.
    public struct Condition: Sendable, Equatable, Codable, CustomStringConvertible {
        /// `AbleToScale`, `ScalingActive`, `ScalingLimited`.
        public var type: String
        /// `True`, `False` or `Unknown`.
        public var status: String
        /// The controller's one-word reason (`FailedGetResourceMetric`).
        public var reason: String
        /// The controller's message.
        public var message: String

        /// `ScalingActive False FailedGetResourceMetric: the HPA was unable to …`.
        public var description: String { "\(type) \(status) \(reason)" + (message.isEmpty ? "" : ": \(message)") }
    }

    /// Why an answer is not an HPA.
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public var namespace: String
    public var name: String
    /// The name of the workload it scales (`spec.scaleTargetRef.name`).
    public var target: String
    public var minReplicas: Int
    public var maxReplicas: Int
    /// `status.currentReplicas` (0 when the controller has not written a status yet).
    public var currentReplicas: Int
    /// `status.desiredReplicas`: what the controller last decided.
    public var desiredReplicas: Int
    /// The pods' average CPU use as a percentage of their request, when the controller had metrics.
    public var cpuUtilization: Int?
    public var conditions: [Condition]

    /// Parses one HPA object (`kubectl get horizontalpodautoscaler NAME -o json`).
    public init(json: Data) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw ParseError(description: "the answer is not a JSON object: \(String(decoding: json.prefix(200), as: UTF8.self))")
        }
        guard object["kind"] as? String == "HorizontalPodAutoscaler" else {
            throw ParseError(description: "the answer is a \(object["kind"] as? String ?? "object without a kind"), not a HorizontalPodAutoscaler")
        }
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        let spec = object["spec"] as? [String: Any] ?? [:]
        let status = object["status"] as? [String: Any] ?? [:]
        namespace = metadata["namespace"] as? String ?? ""
        name = metadata["name"] as? String ?? ""
        target = (spec["scaleTargetRef"] as? [String: Any])?["name"] as? String ?? ""
        minReplicas = spec["minReplicas"] as? Int ?? 1
        guard let max = spec["maxReplicas"] as? Int else { throw ParseError(description: "HPA \(namespace)/\(name) has no spec.maxReplicas") }
        maxReplicas = max
        currentReplicas = status["currentReplicas"] as? Int ?? 0
        desiredReplicas = status["desiredReplicas"] as? Int ?? currentReplicas
        cpuUtilization = (status["currentMetrics"] as? [[String: Any]] ?? []).lazy.compactMap { metric -> Int? in
            guard let resource = metric["resource"] as? [String: Any], resource["name"] as? String == "cpu" else { return nil }
            return (resource["current"] as? [String: Any])?["averageUtilization"] as? Int
        }.first
        conditions = (status["conditions"] as? [[String: Any]] ?? []).map {
            Condition(type: $0["type"] as? String ?? "", status: $0["status"] as? String ?? "", reason: $0["reason"] as? String ?? "",
                      message: $0["message"] as? String ?? "")
        }
    }

    /// The condition of `type`, if the controller wrote one.
    public func condition(_ type: String) -> Condition? { conditions.first { $0.type == type } }

    /// The conditions that stop it from scaling: ScalingActive or AbleToScale not True.
    public var blocking: [Condition] {
        conditions.filter { ["ScalingActive", "AbleToScale"].contains($0.type) && $0.status != "True" }
    }

    /// Every condition on its own line, indented by `indent`; "(none reported)" when there are none.
    public func conditionLines(indent: String = "    ") -> String {
        conditions.isEmpty ? "\(indent)(none reported: the controller has not evaluated it yet)" : conditions.map { indent + $0.description }.joined(separator: "\n")
    }
}
