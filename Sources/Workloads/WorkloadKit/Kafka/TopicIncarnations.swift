import CKafkaAdmin
import Foundation

/// The topic id (Kafka's UUID for one incarnation of a topic, KIP-516) of each consumed topic, as
/// a consumer stamps it on its records. A topic deleted and created again under the same name gets
/// a new id, and its offsets start again at 0.
///
/// Ids come from librdkafka's DescribeTopics (2.3 or later, looked up at run time by the
/// `CKafkaAdmin` target). When the loaded librdkafka lacks it, or the broker does not answer with
/// an id, the topic has none: its records keep the older `topic/partition/offset` document id, and
/// a line on stderr says so once. A topic whose lookup failed is tried again at most every
/// `retryInterval`.
///
/// Used on the consumer's polling thread only (its rebalance callback runs there too).
final class TopicIncarnations {
    /// The id of each topic that has one, URL-safe base64 without padding (`AaJIwVg2f0CXFeYhCO8DuA`).
    private(set) var ids: [String: String] = [:]
    private let topics: [String]
    private let timeoutMs: Int32
    private let retryInterval: TimeInterval
    private var lastAttempt = Date.distantPast
    private var unavailableReported = false
    private var failureReported = false

    init(topics: [String], timeoutMs: Int32 = 5000, retryInterval: TimeInterval = 5) {
        self.topics = topics
        self.timeoutMs = timeoutMs
        self.retryInterval = retryInterval
    }

    /// Asks the broker for the current ids of every topic.
    ///
    /// - Parameters:
    ///   - stale: topics whose known id is certainly out of date (their log went backwards): when
    ///     their lookup fails they lose it rather than keep stamping records of a new incarnation
    ///     with the old one. Other topics keep their last known id through a failed lookup.
    /// - Returns: the topics whose id changed from one known before (a re-created topic).
    @discardableResult
    func refresh(_ client: OpaquePointer, stale: Set<String> = []) -> Set<String> {
        lastAttempt = Date()
        guard !topics.isEmpty else { return [] }
        let size = topics.count * Int(CKAFKA_TOPIC_ID_SIZE)
        var buffer = [CChar](repeating: 0, count: size)
        var errstr = [CChar](repeating: 0, count: 1024)
        let names = topics.map { strdup($0) }
        defer { names.forEach { free($0) } }
        let found = names.map { UnsafePointer($0) }.withUnsafeBufferPointer { pointers in
            ckafka_topic_ids(client, pointers.baseAddress, topics.count, &buffer, size, &errstr, errstr.count, timeoutMs)
        }
        if found == CKAFKA_UNAVAILABLE {
            if !unavailableReported {
                unavailableReported = true
                report("the loaded librdkafka has no DescribeTopics (2.3 or later is needed: put .tools/lib first on LD_LIBRARY_PATH); "
                       + "documents keep the id topic/partition/offset, which records of a re-created topic collide with")
            }
            return []
        }
        var changed: Set<String> = []
        for (index, topic) in topics.enumerated() {
            let id = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress! + index * Int(CKAFKA_TOPIC_ID_SIZE)) }
            if id.isEmpty {
                if stale.contains(topic) { ids[topic] = nil }
                continue
            }
            if let known = ids[topic], known != id { changed.insert(topic) }
            ids[topic] = id
        }
        let problem = String(cString: errstr)
        if found < topics.count, !problem.isEmpty {
            if !failureReported {
                failureReported = true
                report("cannot read every topic id (\(problem)); records of a topic without one get the id topic/partition/offset "
                       + "until a lookup succeeds (tried again every \(Int(retryInterval)) s)")
            }
        } else if failureReported {
            failureReported = false
            report("topic ids read again: \(ids.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
        }
        return changed
    }

    /// The id to stamp on a record of `topic`; a topic without one is looked up again when the
    /// last attempt is older than `retryInterval` (and the API exists).
    func id(of topic: String, client: OpaquePointer) -> String? {
        if let id = ids[topic] { return id }
        if !unavailableReported && Date().timeIntervalSince(lastAttempt) >= retryInterval { refresh(client) }
        return ids[topic]
    }

    private func report(_ line: String) {
        FileHandle.standardError.write(Data("kafka: \(line)\n".utf8))
    }
}
