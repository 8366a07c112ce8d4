import Foundation
import JSON

/// Per-GPU per-minute rollups (`gpu_rollups_1m`), exactly once under redelivery.
///
/// Every sample of one GPU lands on one Kafka partition (the producer keys by GPU UUID), so a
/// bucket's samples arrive in offset order. Each rollup document remembers the offset of the last
/// sample it counted (`through_offset`); a batch adds only samples past it, with an update that
/// matches only if nobody moved the mark meanwhile. A record redelivered after a crash is therefore
/// never counted twice, and one whose batch died before its rollup was written is counted then.
///
/// The mark also names the topic's incarnation (`through_topic_id`): a topic deleted and created
/// again restarts its offsets at 0, and a sample of another incarnation than the mark's is new
/// whatever its offset (the earlier incarnation's records cannot be delivered again once it is gone).
enum GPURollups {
    static let collection = "gpu_rollups_1m"

    /// The fields of one GPU sample a rollup needs.
    struct Sample {
        let gpu: String
        let node: String
        let minute: Int
        let offset: Int64
        /// The topic incarnation of the sample's record; nil when unknown.
        let topicID: String?
        let utilisation: Double
        let temperature: Double
        let power: Double
        let energy: Double
        let xid: Double

        var bucket: String { "\(gpu)|\(minute)" }

        /// The sample of a validated event: `milliseconds` is its normalised event time.
        init?(_ event: BSONDocument, milliseconds: Int64, offset: Int64, topicID: String?) {
            guard let gpu = event.string("gpu_uuid") else { return nil }
            func number(_ key: String) -> Double { event.number(key) ?? 0 }
            self.gpu = gpu
            self.node = event.string("node") ?? ""
            self.minute = Int(milliseconds / 60_000) * 60
            self.offset = offset
            self.topicID = topicID
            utilisation = number("DCGM_FI_DEV_GPU_UTIL")
            temperature = number("DCGM_FI_DEV_GPU_TEMP")
            power = number("DCGM_FI_DEV_POWER_USAGE")
            energy = number("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
            xid = number("DCGM_FI_DEV_XID_ERRORS")
        }
    }

    /// What a batch adds to one bucket.
    struct Contribution {
        let id: String
        let first: Sample
        var count = 0
        var throughOffset: Int64 = -1
        var throughTopicID: String?
        var utilisationSum = 0.0, utilisationMax = -Double.infinity
        var temperatureMax = -Double.infinity, powerSum = 0.0, powerMax = -Double.infinity
        var energyMin = Double.infinity, energyMax = -Double.infinity, xidMax = 0.0

        init(id: String, first: Sample) {
            self.id = id
            self.first = first
        }

        mutating func add(_ s: Sample) {
            count += 1
            // Samples are added in delivery order: the last one is the newest, in whichever incarnation.
            throughOffset = s.offset
            throughTopicID = s.topicID
            utilisationSum += s.utilisation
            utilisationMax = max(utilisationMax, s.utilisation)
            temperatureMax = max(temperatureMax, s.temperature)
            powerSum += s.power
            powerMax = max(powerMax, s.power)
            energyMin = min(energyMin, s.energy)
            energyMax = max(energyMax, s.energy)
            xidMax = max(xidMax, s.xid)
        }

        /// The update document: sums add, extremes widen, the mark moves to the last offset.
        var update: String {
            """
            {"$inc":{"count":\(count),"utilisation_sum":\(utilisationSum),"power_sum":\(powerSum)},\
            "$max":{"utilisation_max":\(utilisationMax),"temperature_max":\(temperatureMax),"power_max":\(powerMax),\
            "energy_max":\(energyMax),"xid_max":\(xidMax)},"$min":{"energy_min":\(energyMin)},\
            "$set":{"through_offset":\(throughOffset),\(topicIDField)"gpu_uuid":\(quoted(first.gpu)),"node":\(quoted(first.node)),"minute":\(first.minute)}}
            """
        }

        /// The document of a bucket seen for the first time.
        var document: String {
            """
            {"_id":\(quoted(id)),"gpu_uuid":\(quoted(first.gpu)),"node":\(quoted(first.node)),"minute":\(first.minute),\
            "count":\(count),"utilisation_sum":\(utilisationSum),"utilisation_max":\(utilisationMax),"temperature_max":\(temperatureMax),\
            "power_sum":\(powerSum),"power_max":\(powerMax),"energy_min":\(energyMin),"energy_max":\(energyMax),"xid_max":\(xidMax),\
            \(topicIDField)"through_offset":\(throughOffset)}
            """
        }

        /// `"through_topic_id":"…",` when the newest sample's incarnation is known, else nothing.
        private var topicIDField: String {
            throughTopicID.map { "\"through_topic_id\":\(quoted($0))," } ?? ""
        }

        private func quoted(_ text: String) -> String {
            String(decoding: JSONValue.string(text).compactData, as: UTF8.self)
        }
    }

    /// Adds `samples` to their buckets in `mongo` (one query for the marks, one bulk write),
    /// skipping samples a bucket already counted. Throws on a conflict or a database error;
    /// calling it again is always safe: what did apply moved its mark.
    static func apply(_ samples: [Sample], mongo: MongoStore) throws {
        guard !samples.isEmpty else { return }
        let buckets = Dictionary(grouping: samples, by: \.bucket)
        let marks = try mongo.marks(Array(buckets.keys), in: collection)
        var inserts: [String] = []
        var updates: [(filter: String, update: String)] = []
        for (id, bucketSamples) in buckets {
            let mark = marks[id]
            // A bucket's samples come from one partition, in delivery order (grouping keeps it): with a
            // topic created again, offset order would put the new incarnation's first samples first.
            let ordered = bucketSamples
            let fresh = ordered.filter { sample in mark.map { sample.topicID != $0.topicID || sample.offset > $0.offset } ?? true }
            guard let first = fresh.first else { continue }
            var contribution = Contribution(id: id, first: first)
            fresh.forEach { contribution.add($0) }
            if let mark {
                var expected: JSONValue = ["_id": .string(id), "through_offset": .int(Int(mark.offset))]
                if let topicID = mark.topicID { expected["through_topic_id"] = .string(topicID) }
                updates.append((String(decoding: expected.compactData, as: UTF8.self), contribution.update))
            } else {
                inserts.append(contribution.document)
            }
        }
        try mongo.writeRollups(inserts: inserts, updates: updates, in: collection)
    }
}
