import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The data flow heals itself: a topic deleted and created again (the broker lost its data) is
/// consumed again without a record taken for a duplicate, and a producer's state file says what
/// the broker acknowledged, so that it can be compared with what was stored.
@Suite(.serialized) struct SelfHealingTests {
    /// Topic administration and reads through confluent-kafka (librdkafka 2.16):
    /// `ids` prints each topic's id (URL-safe base64, as the processor writes it); `recreate`
    /// deletes the topics, waits until they are gone, creates them again with 3 partitions and
    /// prints their new ids; `list` prints the topic names the broker has.
    static let adminScript = """
        import json, sys, time
        from confluent_kafka import TopicCollection
        from confluent_kafka.admin import AdminClient, NewTopic
        mode, brokers, topics = sys.argv[1], sys.argv[2], sys.argv[3:]
        admin = AdminClient({"bootstrap.servers": brokers})
        def names():
            return sorted(admin.list_topics(timeout=10).topics)
        def ids():
            described = admin.describe_topics(TopicCollection(topics))
            return {t: str(f.result(10).topic_id).rstrip("=").replace("+", "-").replace("/", "_") for t, f in described.items()}
        def wait(condition, what):
            deadline = time.time() + 30
            while not condition():
                if time.time() > deadline:
                    sys.exit("timed out waiting until " + what)
                time.sleep(0.2)
        if mode == "list":
            print(json.dumps(names()))
        elif mode == "ids":
            print(json.dumps(ids()))
        elif mode == "recreate":
            for future in admin.delete_topics(topics).values():
                future.result(10)
            wait(lambda: not set(topics) & set(names()), "the topics are gone")
            for future in admin.create_topics([NewTopic(t, 3, 1) for t in topics]).values():
                future.result(10)
            wait(lambda: set(topics) <= set(names()), "the topics exist again")
            print(json.dumps(ids()))
        """

    /// Runs a mode of `adminScript` and returns the JSON it prints.
    static func admin(_ cli: CLI, _ broker: Broker, _ mode: String, _ topics: [String] = []) async throws -> Any {
        let script = cli.write("admin.py", adminScript)
        let result = try await cli.run([script, mode, broker.address] + topics, executable: Services.python)
        guard result.code == 0 else { throw PipelineTests.PipelineError("admin.py \(mode) failed: \(result.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    /// The producer's state file, decoded; nil while it does not exist or cannot be read.
    static func state(_ path: String) -> (node: String, runs: [[String: Any]])? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let runs = object["runs"] as? [[String: Any]] else { return nil }
        return (object["node"] as? String ?? "", runs)
    }

    /// Runs a pymongo query over both event collections and returns the JSON it prints.
    static func query(_ pipeline: PipelineTests.Pipeline, _ body: String) async throws -> Any {
        let script = pipeline.cli.write("query.py", """
            import json, sys
            from pymongo import MongoClient
            db = MongoClient(sys.argv[1])["gpu_pipeline"]
            collections = [db.gpu_metrics, db.token_usage]
            \(body)
            """)
        let result = try await pipeline.cli.run([script, pipeline.mongo.uri], executable: Services.python)
        guard result.code == 0 else { throw PipelineTests.PipelineError("query.py failed: \(result.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    /// librdkafka 2.16 against Tansu 0.6.0 can crash (SIGSEGV in rd_kafka_metadata_cache_find, on
    /// librdkafka's own thread) when a subscribed topic is deleted; the processor from before topic
    /// ids does too. A supervisor (Kubernetes) starts it again, and so does this test: what it
    /// proves is that the stored documents end right whether the processor lived through the
    /// deletion or was restarted.
    @Test func topicsDeletedAndCreatedAgainWhileTheProcessorRunsHaveEveryNewRecordStoredAndTheOldDocumentsKept() async throws {
        let pipeline = try await PipelineTests.Pipeline()
        defer { pipeline.stop() }
        let topics = ["gpu.metrics.v1", "token.usage.v1"]
        try await pipeline.produce(2000)
        var (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        try await waitUntil(timeout: .seconds(60)) { pipeline.stats(port).map { $0.metrics == 1000 && $0.tokens == 1000 } ?? false }
        let old = try #require(try await Self.admin(pipeline.cli, pipeline.broker, "ids", topics) as? [String: String])

        // The broker loses the topics; they are created again, empty, and the producers go on.
        let new = try #require(try await Self.admin(pipeline.cli, pipeline.broker, "recreate", topics) as? [String: String])
        #expect(topics.allSatisfy { new[$0] != nil && new[$0] != old[$0] }, "a topic created again has a new id: \(old) → \(new)")
        try await pipeline.produce(600)
        var restarts = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while pipeline.stats(port).map({ $0.metrics == 1300 && $0.tokens == 1300 }) != true {
            if !processor.isRunning {
                processor.wait()
                restarts += 1
                print("processor ended (exit \(processor.exitCode)) after the topics were deleted; starting it again as a supervisor would")
                (processor, port) = try await pipeline.startProcessor()
            }
            guard ContinuousClock.now < deadline else {
                Issue.record("stored \(String(describing: pipeline.stats(port))), expected 1300 each; processor: \(processor.stderr.suffix(3000))")
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(restarts <= 1)
        try await waitUntil(timeout: .seconds(30)) { PipelineTests.lagTotal(port) == 0 }
        #expect(processor.isRunning)

        // Exactly what was produced after the re-creation was added: old documents kept, none dropped, none twice.
        let byID = try #require(try await Self.query(pipeline, """
            print(json.dumps({c.name: {d["_id"]: d["n"] for d in c.aggregate([{"$group": {"_id": "$kafka_topic_id", "n": {"$sum": 1}}}])}
                              for c in collections}))
            """) as? [String: [String: Int]])
        #expect(byID["gpu_metrics"] == [old["gpu.metrics.v1"]!: 1000, new["gpu.metrics.v1"]!: 300], "\(byID)")
        #expect(byID["token_usage"] == [old["token.usage.v1"]!: 1000, new["token.usage.v1"]!: 300], "\(byID)")
        #expect(pipeline.stats(port)?.deadLettered == 0)
        #expect(try await pipeline.wrongDocuments() == [])
        let rollups = try await pipeline.checkRollups()
        #expect(rollups.counted == 1300 && rollups.mismatches.isEmpty, "the rollups count the new incarnation's samples too: \(rollups)")
    }

    @Test func stateFileAcknowledgedEqualsTheDocumentsStoredForItsRunAndEachStartAddsARun() async throws {
        let pipeline = try await PipelineTests.Pipeline()
        defer { pipeline.stop() }
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        let file = pipeline.cli.directory.appendingPathComponent("producer-state.json").path
        let arguments = ["--brokers", pipeline.broker.address, "--node", "node-a", "--source", "synthetic", "--state-file", file]

        // A paced run stopped by SIGTERM: its acknowledgements arrive while it runs, not every 1000 messages.
        let running = try pipeline.cli.start(arguments + ["--continuous", "--rate", "100"], executable: ProducerTests.producer,
                                             environment: Services.libraryPath)
        try await waitUntil(timeout: .seconds(30)) { (Self.state(file)?.runs.first?["acknowledged"] as? Int ?? 0) >= 100 }
        kill(running.pid, SIGTERM)
        try await running.finish()
        #expect(running.exitCode == 0, "\(running.stderr)")
        let first = try #require(Self.state(file))
        #expect(first.node == "node-a" && first.runs.count == 1)
        let run = try #require(first.runs.first)
        let id = try #require(run["run"] as? String)
        let acknowledged = try #require(run["acknowledged"] as? Int)
        #expect(id.range(of: #"^node-a-[0-9]{13}-[0-9a-f]{4}$"#, options: .regularExpression) != nil, "\(id)")
        #expect(run["ended"] as? Bool == true)
        #expect(run["produced"] as? Int == acknowledged && run["failed"] as? Int == 0, "\(run)")

        // What the broker acknowledged is what reached the database, each event once.
        let storedQuery = """
            seqs = [d["event_seq"] for c in collections for d in c.find({"producer_run": "\(id)"}, {"event_seq": 1})]
            print(json.dumps([len(seqs), len(set(seqs)), max(seqs) if seqs else -1]))
            """
        var stored: [Int] = []
        try await waitUntil(timeout: .seconds(60)) {
            stored = (try? await Self.query(pipeline, storedQuery) as? [Int]) ?? []
            return stored.first == acknowledged
        }
        #expect(stored == [acknowledged, acknowledged, acknowledged - 1], "documents, distinct event_seq, last event_seq: \(stored)")

        // A second start adds a run and keeps the first.
        let counted = try await pipeline.cli.run(arguments + ["--count", "50"], executable: ProducerTests.producer, environment: Services.libraryPath)
        #expect(counted.code == 0, "\(counted.stderr)")
        let second = try #require(Self.state(file))
        #expect(second.runs.count == 2)
        let kept = second.runs[0]
        #expect(kept["run"] as? String == id && kept["acknowledged"] as? Int == acknowledged && kept["produced"] as? Int == acknowledged
                && kept["failed"] as? Int == 0 && kept["ended"] as? Bool == true, "the first run is kept as it was: \(kept)")
        #expect(second.runs[1]["run"] as? String != id)
        #expect(second.runs[1]["acknowledged"] as? Int == 50 && second.runs[1]["ended"] as? Bool == true, "\(second.runs[1])")

        // A killed run keeps its last written numbers, not ended.
        let killed = try pipeline.cli.start(arguments + ["--continuous", "--rate", "100"], executable: ProducerTests.producer,
                                            environment: Services.libraryPath)
        try await waitUntil(timeout: .seconds(30)) {
            Self.state(file).map { $0.runs.count == 3 && ($0.runs[2]["acknowledged"] as? Int ?? 0) > 0 } ?? false
        }
        kill(killed.pid, SIGKILL)
        killed.wait()
        let third = try #require(Self.state(file))
        #expect(third.runs.count == 3 && third.runs[2]["ended"] as? Bool == false, "\(third.runs)")
    }
}
