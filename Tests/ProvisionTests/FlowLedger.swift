@testable import App
@testable import Engine
import Foundation
@testable import NodeRuntime
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What a sandbox pipeline holds against what its producers say they sent, for exactly-once
/// checks: each producer's state file (`ProcessesRuntime.producerState`: per run of the program,
/// events produced, acknowledged by the broker, failed) and, from MongoDB, the stored events of
/// each producer run (by `producer_run` and `event_seq`) and the documents of each topic
/// incarnation (by `kafka_topic_id` and partition).
struct FlowLedger: Decodable {
    /// One run of a producer program, as its state file says.
    struct Run: Decodable {
        let run: String
        let produced: Int
        let acknowledged: Int
        let failed: Int
        let ended: Bool
    }

    /// The documents of one run: distinct events, and copies beyond the first.
    struct Stored: Decodable {
        let events: Int
        let duplicates: Int
    }

    /// The documents of one partition of one topic incarnation.
    struct Partition: Decodable {
        let count: Int
        let maxOffset: Int

    }

    /// Stored events by producer run.
    let stored: [String: Stored]
    /// By collection, the stored events' identities (`<producer_run>/<event_seq>`).
    let events: [String: [String]]
    /// By collection, then topic id, then partition.
    let incarnations: [String: [String: [String: Partition]]]
    /// Every run of every producer, filled in from the workers' state files.
    var runs: [Run] = []
    /// What the broker holds now, read by a consumer of its own from the start of each topic: by
    /// collection, the topic's id and the records of each partition (a log may skip offsets, so
    /// its records are counted, not inferred from the highest offset).
    var broker: [String: (id: String, records: [String: Int], events: Set<String>)] = [:]
    /// Distinct events of each producer run the broker holds (with `broker`), from the records'
    /// own `producer_run` and `event_seq`.
    var held: [String: Int]?

    enum CodingKeys: String, CodingKey { case stored, incarnations, events }

    /// Reads MongoDB on the control plane (pymongo from bootstrap's venv) and every worker's
    /// producer state file; with `broker`, also every record the broker holds (slow: a whole read).
    static func read(_ nodes: SandboxNodes, cli: CLI, broker: Bool = false) async throws -> FlowLedger {
        let script = cli.write("ledger.py", """
            import json, sys, pymongo
            db = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000).gpu_pipeline
            seen, incarnations, events = {}, {}, {}
            for collection in ("gpu_metrics", "token_usage"):
                for d in db[collection].find({}):
                    run = d.get("producer_run")
                    if run is not None:
                        key = (run, d.get("event_seq"))
                        seen[key] = seen.get(key, 0) + 1
                        events.setdefault(collection, []).append("%s/%s" % key)
                    topic = str(d.get("kafka_topic_id", ""))
                    p = incarnations.setdefault(collection, {}).setdefault(topic, {}).setdefault(str(d.get("kafka_partition")), {"count": 0, "maxOffset": -1})
                    p["count"] += 1
                    p["maxOffset"] = max(p["maxOffset"], int(d.get("kafka_offset", -1)))
            stored = {}
            for (run, _), n in seen.items():
                s = stored.setdefault(run, {"events": 0, "duplicates": 0})
                s["events"] += 1
                s["duplicates"] += n - 1
            print(json.dumps({"stored": stored, "incarnations": incarnations, "events": events}))
            """)
        let process = try cli.start([script, "mongodb://\(nodes.address):27017/"], executable: Services.python)
        let deadline = ContinuousClock.now + .seconds(120)
        while process.isRunning {
            guard ContinuousClock.now < deadline else { kill(process.pid, SIGKILL); throw StepFailure("reading MongoDB took over 2 minutes") }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard process.exitCode == 0 else { throw StepFailure("reading MongoDB failed: \(process.stderr.suffix(1000))") }
        var ledger = try JSONDecoder().decode(FlowLedger.self, from: Data(process.stdout.utf8))
        if broker { try await ledger.readBroker(nodes, cli: cli) }
        struct StateFile: Decodable { let runs: [Run] }
        for worker in nodes.inventory.workers {
            let text = try await nodes.run("cat \(ProcessesRuntime.producerState)", on: worker).stdout
            ledger.runs += try JSONDecoder().decode(StateFile.self, from: Data(text.utf8)).runs
        }
        return ledger
    }

    /// Fills `broker` by consuming every pipeline topic from its start with a group of its own.
    private mutating func readBroker(_ nodes: SandboxNodes, cli: CLI) async throws {
        let brokerScript = cli.write("broker.py", """
            import json, sys
            from confluent_kafka import Consumer, KafkaError, TopicCollection
            from confluent_kafka.admin import AdminClient
            servers = sys.argv[1]
            topics = {"gpu.metrics.v1": "gpu_metrics", "token.usage.v1": "token_usage"}
            admin = AdminClient({"bootstrap.servers": servers})
            described = admin.describe_topics(TopicCollection(list(topics)))
            out = {}
            for topic, collection in topics.items():
                d = described[topic].result(20)
                text = str(d.topic_id)  # librdkafka's base64; the processor writes Kafka's URL-safe form
                out[collection] = {"id": text.replace("+", "-").replace("/", "_").rstrip("="), "records": {}, "events": []}
            c = Consumer({"bootstrap.servers": servers, "group.id": "ledger-" + sys.argv[2], "auto.offset.reset": "earliest",
                          "enable.auto.commit": False, "enable.partition.eof": True, "session.timeout.ms": 6000})
            c.subscribe(list(topics))
            ends, partitions, held = set(), None, {}
            while True:
                m = c.poll(2.0)
                if partitions is None and c.assignment():
                    partitions = {(p.topic, p.partition) for p in c.assignment()}
                if m is None:
                    if partitions is not None and ends >= partitions:
                        break
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        ends.add((m.topic(), m.partition()))
                        if partitions is not None and ends >= partitions:
                            break
                    continue
                r = out[topics[m.topic()]]["records"]
                r[str(m.partition())] = r.get(str(m.partition()), 0) + 1
                try:
                    event = json.loads(m.value())
                    held.setdefault(event["producer_run"], set()).add(event["event_seq"])
                    out[topics[m.topic()]]["events"].append("%s/%s" % (event["producer_run"], event["event_seq"]))
                except Exception:
                    pass
            c.close()
            out["_held"] = {run: len(seqs) for run, seqs in held.items()}
            print(json.dumps(out))
            """)
        let reader = try cli.start([brokerScript, "\(nodes.address):9092", UUID().uuidString], executable: Services.python,
                                   environment: ["LD_LIBRARY_PATH": Services.tools.appendingPathComponent("lib").path])
        let brokerDeadline = ContinuousClock.now + .seconds(300)
        while reader.isRunning {
            guard ContinuousClock.now < brokerDeadline else { kill(reader.pid, SIGKILL); throw StepFailure("reading the broker took over 5 minutes") }
            try await Task.sleep(for: .milliseconds(200))
        }
        guard reader.exitCode == 0,
              let read = try JSONSerialization.jsonObject(with: Data(reader.stdout.utf8)) as? [String: [String: Any]] else {
            throw StepFailure("reading the broker failed: \(reader.stderr.suffix(1000))")
        }
        for (collection, topic) in read where collection != "_held" {
            broker[collection] = (topic["id"] as? String ?? "", topic["records"] as? [String: Int] ?? [:], Set(topic["events"] as? [String] ?? []))
        }
        held = (read["_held"] as? [String: Int]) ?? [:]
    }

    /// Why the store does not hold every acknowledged event exactly once, per producer run, or
    /// nil. A run that ended cleanly stored at least what the broker acknowledged and at most that
    /// plus what failed (a failure may come after the broker kept the record); a run that was
    /// killed stored at least what it last wrote down as acknowledged (it may have produced and
    /// been acknowledged more after its last write). No event is stored twice, and every stored
    /// event belongs to a run a state file knows. When the broker was read (`held`), every event
    /// it holds is stored too.
    var exactlyOnceProblems: [String] {
        var problems = runs.compactMap { run -> String? in
            let events = stored[run.run]?.events ?? 0
            let ceiling = run.ended ? run.acknowledged + run.failed : Int.max
            guard events < run.acknowledged || events > ceiling else { return nil }
            return "run \(run.run) (\(run.ended ? "ended" : "killed")): acknowledged \(run.acknowledged), failed \(run.failed), produced \(run.produced), stored \(events)"
        }
        if let held {
            problems += runs.compactMap { run -> String? in
                let events = stored[run.run]?.events ?? 0, kept = held[run.run] ?? 0
                return events == kept ? nil : "run \(run.run): the broker holds \(kept) of its events, MongoDB \(events)"
            }
        }
        let duplicated = stored.filter { $0.value.duplicates > 0 }
        if !duplicated.isEmpty { problems.append("events stored more than once: \(duplicated.mapValues(\.duplicates))") }
        let unknown = Set(stored.keys).subtracting(runs.map(\.run))
        if !unknown.isEmpty { problems.append("stored events of runs no state file knows: \(unknown.sorted())") }
        return problems
    }

    /// Acknowledged events over every run.
    var acknowledged: Int { runs.map(\.acknowledged).reduce(0, +) }
}
