import Foundation

/// A HorizontalPodAutoscaler (`autoscaling/v2`) as the API answers a `get` of it as JSON: its bounds,
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

    /// The fields read of the API's answer.
    private struct Answer: Decodable {
        struct Metadata: Decodable { var name: String?; var namespace: String? }
        struct Spec: Decodable {
            struct Target: Decodable { var name: String? }
            var scaleTargetRef: Target?
            var minReplicas: Int?
            var maxReplicas: Int?
        }
        struct Status: Decodable {
            struct Metric: Decodable {
                struct Resource: Decodable {
                    struct Current: Decodable { var averageUtilization: Int? }
                    var name: String?
                    var current: Current?
                }
                var resource: Resource?
            }
            var currentReplicas: Int?
            var desiredReplicas: Int?
            var currentMetrics: [Metric]?
            var conditions: [KubeCondition]?
        }
        var kind: String?
        var metadata: Metadata?
        var spec: Spec?
        var status: Status?
    }

    /// Parses one HPA object (a `get horizontalpodautoscaler NAME` as JSON).
    public init(json: Data) throws {
        guard let object = try? JSONDecoder().decode(Answer.self, from: json) else {
            throw ParseError(description: "the answer is not a JSON object: \(String(decoding: json.prefix(200), as: UTF8.self))")
        }
        guard object.kind == "HorizontalPodAutoscaler" else {
            throw ParseError(description: "the answer is a \(object.kind ?? "object without a kind"), not a HorizontalPodAutoscaler")
        }
        namespace = object.metadata?.namespace ?? ""
        name = object.metadata?.name ?? ""
        target = object.spec?.scaleTargetRef?.name ?? ""
        minReplicas = object.spec?.minReplicas ?? 1
        guard let max = object.spec?.maxReplicas else { throw ParseError(description: "HPA \(namespace)/\(name) has no spec.maxReplicas") }
        maxReplicas = max
        currentReplicas = object.status?.currentReplicas ?? 0
        desiredReplicas = object.status?.desiredReplicas ?? currentReplicas
        cpuUtilization = (object.status?.currentMetrics ?? []).lazy.compactMap { metric in
            metric.resource?.name == "cpu" ? metric.resource?.current?.averageUtilization : nil
        }.first
        conditions = (object.status?.conditions ?? []).map {
            Condition(type: $0.type ?? "", status: $0.status ?? "", reason: $0.reason ?? "", message: $0.message ?? "")
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
