import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Producer → Tansu → processor → nx-27017, all real, on loopback ports.
@Suite(.serialized) struct PipelineTests {
    static let processorBinary = CLI.repository.appendingPathComponent(".build/\(Services.workloadBuild)/processor").path
    static let topics = ["gpu.metrics.v1", "token.usage.v1", "pipeline.deadletter.v1"]

    struct Pipeline {
        let cli = CLI()
        let broker: Broker
        var mongo: MongoServer
        let script: String

        init(mongoFile: Bool = false) async throws {
            broker = try await Broker(cli: cli)
            mongo = try await MongoServer(cli: cli, file: mongoFile ? cli.directory.appendingPathComponent("mongo.db").path : nil)
            script = cli.write("kafka.py", ProducerTests.kafkaScript)
            try await broker.createTopics(PipelineTests.topics, cli: cli, script: script)
        }

        func stop() {
            broker.stop()
            mongo.stop()
            cli.cleanUp()
        }

        func produce(_ count: Int, gpus: Int = 4) async throws {
            let result = try await cli.run(["--brokers", broker.address, "--count", String(count), "--gpus", String(gpus)],
                                           executable: ProducerTests.producer, environment: Services.libraryPath)
            guard result.code == 0 else { throw PipelineError("producer failed: \(result.stderr)") }
        }

        /// Starts a processor and returns it with its HTTP port.
        func startProcessor() async throws -> (CLI.Running, Int) {
            let process = try cli.start([
                "--brokers", broker.address, "--mongo-uri", mongo.uri, "--http-port", "0", "--batch-size", "500",
                "--kafka", "session.timeout.ms=2000", "--kafka", "heartbeat.interval.ms=200",
            ], executable: PipelineTests.processorBinary, environment: Services.libraryPath)
            var port: Int?
            try await waitUntil {
                port = process.stderr.components(separatedBy: "serving http://127.0.0.1:").dropFirst().first
                    .flatMap { Int($0.prefix { $0.isNumber }) }
                return port != nil || !process.isRunning
            }
            guard let port else { throw PipelineError("processor did not start: \(process.stderr)") }
            return (process, port)
        }

        /// Compares every per-GPU per-minute rollup with the raw documents of its bucket, read
        /// straight from MongoDB (pymongo): returns (buckets, samples counted, mismatches).
        func checkRollups() async throws -> (buckets: Int, counted: Int, mismatches: [String]) {
            let verify = cli.write("rollups.py", """
                import json, sys
                from collections import defaultdict
                from pymongo import MongoClient
                db = MongoClient(sys.argv[1])["gpu_pipeline"]
                raw = defaultdict(lambda: [0, 0.0])
                for doc in db.gpu_metrics.find({}, {"gpu_uuid": 1, "timestamp": 1, "DCGM_FI_DEV_GPU_UTIL": 1}):
                    key = "%s|%d" % (doc["gpu_uuid"], int(doc["timestamp"] / 60) * 60)
                    raw[key][0] += 1
                    raw[key][1] += doc["DCGM_FI_DEV_GPU_UTIL"]
                rollups = {doc["_id"]: doc for doc in db.gpu_rollups_1m.find({})}
                bad = [k for k in set(raw) | set(rollups)
                       if k not in raw or k not in rollups or rollups[k]["count"] != raw[k][0]
                       or abs(rollups[k]["utilisation_sum"] - raw[k][1]) > 1e-6]
                print(json.dumps({"buckets": len(rollups), "counted": sum(r["count"] for r in rollups.values()), "bad": bad[:5]}))
                """)
            guard let object = try await readMongo(verify) as? [String: Any] else { throw PipelineError("rollup check printed no object") }
            return (object["buckets"] as? Int ?? -1, object["counted"] as? Int ?? -1, object["bad"] as? [String] ?? ["?"])
        }

        /// Reads every stored event back (pymongo) and returns the ids of those whose fields are
        /// wrong: an `_id` that is not the event's `event/<producer_run>/<event_seq>`, Kafka
        /// coordinates without a topic id, no `received_at` date, or a payload field missing.
        func wrongDocuments() async throws -> [String] {
            let verify = cli.write("documents.py", """
                import datetime, json, sys
                from pymongo import MongoClient
                db = MongoClient(sys.argv[1])["gpu_pipeline"]
                run = ["producer_run", "event_seq"]
                fields = {"gpu_metrics": ("gpu.metrics.v1", ["gpu_uuid", "node", "timestamp", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"] + run),
                          "token_usage": ("token.usage.v1", ["request_id", "model", "prompt_tokens", "completion_tokens", "latency_ms"] + run)}
                bad = []
                for collection, (topic, payload) in fields.items():
                    for doc in db[collection].find({}):
                        topic_id = doc.get("kafka_topic_id")
                        identity = "event/%s/%s" % (doc.get("producer_run"), doc.get("event_seq"))
                        if doc["_id"] != identity or not isinstance(doc.get("kafka_offset"), int) or not isinstance(topic_id, str) or len(topic_id) != 22 or not isinstance(doc.get("received_at"), datetime.datetime) \\
                                or any(f not in doc for f in payload):
                            bad.append(doc["_id"])
                print(json.dumps(bad[:5]))
                """)
            guard let bad = try await readMongo(verify) as? [String] else { throw PipelineError("document check printed no list") }
            return bad
        }

        /// The samples counted by all rollups together, and the GPU samples stored.
        func rollupCountAndStoredSamples() async throws -> (rolledUp: Int, stored: Int) {
            let count = cli.write("count.py", """
                import json, sys
                from pymongo import MongoClient
                db = MongoClient(sys.argv[1])["gpu_pipeline"]
                print(json.dumps([sum(d["count"] for d in db.gpu_rollups_1m.find({})), db.gpu_metrics.count_documents({})]))
                """)
            guard let pair = try await readMongo(count) as? [Int], pair.count == 2 else { throw PipelineError("count.py printed no pair") }
            return (pair[0], pair[1])
        }

        /// Runs a Python script (the venv's, with pymongo) given this pipeline's MongoDB URI and
        /// returns the JSON it prints.
        private func readMongo(_ script: String) async throws -> Any {
            let result = try await cli.run([script, mongo.uri], executable: Services.python)
            guard result.code == 0 else { throw PipelineError("\(script) failed: \(result.stderr)") }
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        }

        func stats(_ port: Int) -> (metrics: Int, tokens: Int, deadLettered: Int)? {
            guard let s = Services.json(port: port, "/stats") else { return nil }
            return (s["gpu_metrics"] as? Int ?? -1, s["token_usage"] as? Int ?? -1, s["dead_lettered"] as? Int ?? -1)
        }

        func consume(_ topic: String) async throws -> [[String: Any]] {
            let result = try await cli.run([script, "consume", broker.address, topic], executable: Services.python)
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [[String: Any]]]
            return object?[topic] ?? []
        }
    }

    struct PipelineError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test func roundTripWritesOneDocumentPerEventAndTheEndpointsAgree() async throws {
        let pipeline = try await Pipeline()
        defer { pipeline.stop() }
        try await pipeline.produce(2000)
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        try await waitUntil(timeout: .seconds(180)) { pipeline.stats(port).map { $0.metrics == 1000 && $0.tokens == 1000 } ?? false }
        // Documents are in MongoDB before their batch is counted (rollups and commit come after).
        try await waitUntil(timeout: .seconds(10)) {
            Services.get(port: port, "/metrics")?.body.contains("processor_written_total{topic=\"token.usage.v1\"} 1000") == true
                && Services.get(port: port, "/metrics")?.body.contains("processor_written_total{topic=\"gpu.metrics.v1\"} 1000") == true
        }

        #expect(Services.get(port: port, "/health")?.status == 200)
        let ready = Services.json(port: port, "/ready")
        #expect(ready?["ready"] as? Bool == true)
        let gpus = try #require(Services.json(port: port, "/gpu/info"))
        #expect(gpus.count == 4)
        #expect(gpus.values.allSatisfy { ($0 as? [String: Any])?["DCGM_FI_DEV_GPU_UTIL"] != nil })
        let metrics = Services.get(port: port, "/metrics")?.body ?? ""
        #expect(metrics.contains("processor_batch_size_count"))
        #expect(metrics.contains("processor_consumer_lag{topic=\"gpu.metrics.v1\",partition=\"0\"}"))
        try await waitUntil(timeout: .seconds(90)) { Self.lagTotal(port) == 0 }
        // Every batch finished (rollups added, offsets committed), and nothing failed on the way: no
        // write (documents, rollups, dead letters) was retried.
        let failures = (Services.get(port: port, "/metrics")?.body ?? "").split(separator: "\n").filter { $0.hasPrefix("processor_write_failures_total") }
        #expect(failures == ["processor_write_failures_total 0"], "\(failures)")
        #expect(!processor.stderr.contains("failed ("), "\(processor.stderr.suffix(2000))")
        #expect(Services.get(port: port, "/nope")?.status == 404)
        let rollups = try await pipeline.checkRollups()
        #expect(rollups.counted == 1000 && rollups.buckets >= 4 && rollups.mismatches.isEmpty, "\(rollups)")
        #expect(try await pipeline.wrongDocuments() == [])

        // A restarted processor starts from the committed offsets and writes nothing twice.
        try await Services.terminate(processor)
        #expect(processor.exitCode == 0, "SIGTERM is a clean stop")
        let (again, port2) = try await pipeline.startProcessor()
        defer { Services.stop(again) }
        try await pipeline.produce(20)
        try await waitUntil(timeout: .seconds(180)) { pipeline.stats(port2).map { $0.metrics == 1010 && $0.tokens == 1010 } ?? false }
    }

    /// Counters exported at 0 from the start: a rate over them sees the first documents at the
    /// first scrape after them (verify waits for that), not the second.
    @Test func thePerTopicCountersAreExportedAtZeroBeforeTheFirstRecord() async throws {
        let pipeline = try await Pipeline()
        defer { pipeline.stop() }
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        let metrics = Services.get(port: port, "/metrics")?.body ?? ""
        for topic in ["gpu.metrics.v1", "token.usage.v1"] {
            #expect(metrics.contains("processor_consumed_total{topic=\"\(topic)\"} 0\n"), "\(metrics.prefix(600))")
            #expect(metrics.contains("processor_written_total{topic=\"\(topic)\"} 0\n"), "\(metrics.prefix(600))")
        }
        #expect(!metrics.contains("topic=\"pipeline.deadletter.v1\""), "the dead-letter topic is written, not consumed")
    }

    /// A processor stopped (SIGTERM) while it is still joining its consumer group, as a restart
    /// right after a start does (`resume` after a kill in the middle of `up`): the next processor
    /// must still be assigned the partitions and store what waits (Tansu 0.6.0 never assigned them
    /// again once a member left during its first join: `KafkaConsumer.close`).
    @Test func aProcessorStoppedWhileJoiningItsGroupLeavesThePartitionsToTheNextOne() async throws {
        for delay in [300, 1000] {
            let pipeline = try await Pipeline()
            defer { pipeline.stop() }
            try await pipeline.produce(20)
            let (first, _) = try await pipeline.startProcessor()
            try await Task.sleep(for: .milliseconds(delay))
            try await Services.terminate(first)
            #expect(first.exitCode == 0, "SIGTERM is a clean stop: \(first.stderr)")
            let (next, port) = try await pipeline.startProcessor()
            defer { Services.stop(next) }
            try await waitUntil(timeout: .seconds(90), every: .milliseconds(500)) {
                pipeline.stats(port).map { $0.metrics == 10 && $0.tokens == 10 } ?? false
            }
        }
    }

    @Test func anEventTheBrokerHoldsTwiceIsStoredOnceAndEventsWithoutAnIdentityByTheirKafkaCoordinates() async throws {
        let pipeline = try await Pipeline()
        defer { pipeline.stop() }
        // What a non-idempotent producer's retry leaves: the same event at two offsets. Events
        // without a producer identity (or with one not in the producers' form) are told apart by
        // their coordinates, so two equal ones are two documents.
        let gpu = #"{"gpu_uuid":"GPU-dup","node":"n","timestamp":1796500000,"DCGM_FI_DEV_GPU_UTIL":1,"DCGM_FI_DEV_FB_USED":1,"DCGM_FI_DEV_FB_FREE":1,"DCGM_FI_DEV_GPU_TEMP":1,"DCGM_FI_DEV_POWER_USAGE":1,"DCGM_FI_DEV_SM_CLOCK":1,"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":1,"DCGM_FI_DEV_XID_ERRORS":0"#
        let token = #"{"request_id":"r","model":"m","timestamp":1796500000,"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"latency_ms":3"#
        let records = [
            ("gpu.metrics.v1", gpu + #","producer_run":"w-1-abcd","event_seq":7}"#),
            ("gpu.metrics.v1", gpu + #","producer_run":"w-1-abcd","event_seq":7}"#),
            ("token.usage.v1", token + #","producer_run":"w-1-abcd","event_seq":8}"#),
            ("token.usage.v1", token + #","producer_run":"w-1-abcd","event_seq":8}"#),
            ("token.usage.v1", token + "}"),
            ("token.usage.v1", token + "}"),
            ("token.usage.v1", token + #","producer_run":"../x y","event_seq":9}"#),
            ("token.usage.v1", token + #","producer_run":"w-1-abcd","event_seq":-1}"#),
            ("token.usage.v1", token + #","producer_run":"w-1-abcd","event_seq":"10"}"#),
        ]
        let file = pipeline.cli.write("twice.tsv", records.map { "\($0.0)\tk\t\($0.1)" }.joined(separator: "\n") + "\n")
        #expect(try await pipeline.cli.run([pipeline.script, "produce", pipeline.broker.address, file], executable: Services.python).code == 0)
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        try await waitUntil(timeout: .seconds(180)) { Self.lagTotal(port) == 0 && pipeline.stats(port).map { $0.metrics == 1 && $0.tokens == 6 } ?? false }
        let ids = pipeline.cli.write("ids.py", """
            import json, sys
            from pymongo import MongoClient
            db = MongoClient(sys.argv[1])["gpu_pipeline"]
            print(json.dumps(sorted(d["_id"] for c in ("gpu_metrics", "token_usage") for d in db[c].find({}))))
            """)
        let stored = try JSONSerialization.jsonObject(with: Data(try await pipeline.cli.run([ids, pipeline.mongo.uri], executable: Services.python).stdout.utf8)) as? [String]
        let byIdentity = (stored ?? []).filter { $0.hasPrefix("event/") }
        let byCoordinates = (stored ?? []).filter { $0.hasPrefix("token.usage.v1/") }
        #expect(byIdentity == ["event/w-1-abcd/7", "event/w-1-abcd/8"], "\(stored ?? [])")
        #expect(byCoordinates.count == 5 && stored?.count == 7, "no identity, a path-like run, a negative or a string sequence: by coordinates: \(stored ?? [])")
    }

    @Test func malformedRecordsGoToTheDeadLetterTopicWithTheirReasonAndValidOnesAllLand() async throws {
        let pipeline = try await Pipeline()
        defer { pipeline.stop() }
        try await pipeline.produce(990)
        let poison = [
            ("gpu.metrics.v1", "not json at all {"),
            ("gpu.metrics.v1", #"["an", "array"]"#),
            ("gpu.metrics.v1", #"{"node":"n"}"#),
            ("gpu.metrics.v1", #"{"gpu_uuid":42,"node":"n"}"#),
            ("gpu.metrics.v1", #"{"gpu_uuid":"GPU-x","node":"n","DCGM_FI_DEV_GPU_UTIL":"high"}"#),
            ("token.usage.v1", #"{"request_id":"r1"}"#),
            ("token.usage.v1", #"{"request_id":"r2","model":"m","prompt_tokens":"ten"}"#),
            ("token.usage.v1", ""),
            ("token.usage.v1", "\u{1}\u{2}binary"),
            ("token.usage.v1", #"{"request_id":null,"model":"m"}"#),
        ]
        let lines = poison.enumerated().map { "\($1.0)\tbad-\($0)\t\($1.1)" }.joined(separator: "\n") + "\n"
        let file = pipeline.cli.write("poison.tsv", lines)
        #expect(try await pipeline.cli.run([pipeline.script, "produce", pipeline.broker.address, file], executable: Services.python).code == 0)

        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        do {
            try await waitUntil(timeout: .seconds(180)) { pipeline.stats(port).map { $0.metrics == 495 && $0.tokens == 495 && $0.deadLettered == 10 } ?? false }
        } catch {
            // Passes in ~9 s alone; it once timed out in a loaded clean-clone run: say what the processor saw.
            Issue.record("stored \(String(describing: pipeline.stats(port))) of 495 each and 10 dead letters; processor: \(processor.stderr.suffix(3000))")
            throw error
        }
        #expect(processor.isRunning, "poison never stops the consumer")
        // The reason and the record's coordinates ride in headers; the value is the record's own bytes.
        let letters = try await HostileRecordTests.letters(pipeline)
        #expect(letters.count == 10)
        let reasons = letters.compactMap { $0.headers["dlq.reason"] }
        #expect(reasons.contains { $0.hasPrefix("not valid JSON") })
        #expect(reasons.contains("missing field 'gpu_uuid'"))
        #expect(reasons.contains("field 'gpu_uuid' must be a string"))
        #expect(reasons.contains("field 'prompt_tokens' must be a number"))
        #expect(letters.allSatisfy { $0.headers["dlq.offset"] != nil })
        #expect(letters.contains { $0.value == Data("not json at all {".utf8) })
    }

    @Test func sigkillAtFiveRandomMomentsLosesAndDuplicatesNothing() async throws {
        let pipeline = try await Pipeline()
        defer { pipeline.stop() }
        try await pipeline.produce(100_000, gpus: 8)
        var generator = SystemRandomNumberGenerator()
        var lastPort = 0
        for _ in 0..<5 {
            let (processor, port) = try await pipeline.startProcessor()
            lastPort = port
            try await Task.sleep(for: .milliseconds(Int.random(in: 300...1500, using: &generator)))
            kill(processor.pid, SIGKILL)
            processor.wait()
        }
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        #expect(port != 0 && lastPort != 0)
        do {
            try await waitUntilCount(reaches: 100_000) { pipeline.stats(port).map { $0.metrics + $0.tokens } }
        } catch {
            let reasons = Set(((try? await HostileRecordTests.letters(pipeline)) ?? []).compactMap { $0.headers["dlq.reason"] })
            Issue.record("stored \(String(describing: pipeline.stats(port))) of 100000; dead letters' reasons: \(reasons); processor: \(processor.stderr.suffix(3000))")
            throw error
        }
        // Every batch finished (rollups written, offsets committed) once nothing is left to commit.
        try await waitUntil(timeout: .seconds(90)) { Self.lagTotal(port) == 0 }
        let final = try #require(pipeline.stats(port))
        #expect(final.metrics == 50_000)
        #expect(final.tokens == 50_000)
        let rollups = try await pipeline.checkRollups()
        #expect(rollups.counted == 50_000, "every GPU sample counted exactly once in the per-minute rollups despite 5 SIGKILLs")
        #expect(rollups.mismatches.isEmpty, "each rollup equals its raw bucket: \(rollups.mismatches)")
        #expect(try await pipeline.consume("pipeline.deadletter.v1").isEmpty)
    }

    @Test func mongoDBDownForTenSecondsIsReportedByReadyAndLosesOrDuplicatesNothing() async throws {
        var pipeline = try await Pipeline(mongoFile: true)
        defer { pipeline.stop() }
        try await pipeline.produce(20_000)
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        try await waitUntil(timeout: .seconds(180), every: .seconds(1)) { pipeline.stats(port).map { $0.metrics + $0.tokens > 1000 } ?? false }

        pipeline.mongo.stop()
        try await waitUntil(timeout: .seconds(20)) { Services.get(port: port, "/ready")?.status == 503 }
        #expect(Services.json(port: port, "/ready")?["mongodb"] as? Bool == false)
        #expect(Services.get(port: port, "/health")?.status == 200, "alive while the database is down")
        try await Task.sleep(for: .seconds(10))
        #expect(processor.isRunning)
        #expect(Self.lagTotal(port) ?? 0 > 0, "records waiting behind the outage show up as consumer lag")

        pipeline.mongo = try await MongoServer(cli: pipeline.cli, file: pipeline.mongo.store, port: pipeline.mongo.port)
        try await waitUntilCount(reaches: 20_000) { pipeline.stats(port).map { $0.metrics + $0.tokens } }
        try await Task.sleep(for: .seconds(1))
        let final = try #require(pipeline.stats(port))
        #expect(final.metrics == 10_000)
        #expect(final.tokens == 10_000)
        #expect(Services.get(port: port, "/ready")?.status == 200)
        #expect((Services.get(port: port, "/metrics")?.body ?? "").contains("processor_write_failures_total"))
        try await waitUntil(timeout: .seconds(90)) { Self.lagTotal(port) == 0 }
    }

    /// `processor_consumer_lag_records` (all partitions) from /metrics.
    static func lagTotal(_ port: Int) -> Int? {
        let body = Services.get(port: port, "/metrics")?.body ?? ""
        return body.split(separator: "\n").first { $0.hasPrefix("processor_consumer_lag_records ") }.flatMap { Int($0.split(separator: " ")[1]) }
    }
}
