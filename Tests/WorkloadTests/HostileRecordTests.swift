import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile records against the real pipeline (Tansu → processor → nx-27017): no record may stop
/// it, every record ends stored or dead-lettered, and a dead letter keeps the original bytes.
@Suite(.serialized) struct HostileRecordTests {
    /// Writes and reads records as raw bytes (confluent-kafka): `hostile` produces a seeded mix of
    /// hostile and valid records and prints, for each, its coordinates, bytes and kind;
    /// `one` produces one valid GPU sample; `letters` prints every dead letter with its headers.
    static let script = """
        import base64, json, random, sys, time
        from confluent_kafka import Consumer, Producer, TopicPartition
        mode, brokers = sys.argv[1], sys.argv[2]
        b64 = lambda v: None if v is None else base64.b64encode(v).decode()
        M, T = "gpu.metrics.v1", "token.usage.v1"
        def gpu(uuid, ts, **extra):
            d = {"gpu_uuid": uuid, "node": "fuzz", "timestamp": ts, "DCGM_FI_DEV_GPU_UTIL": 50, "DCGM_FI_DEV_FB_USED": 1,
                 "DCGM_FI_DEV_FB_FREE": 2, "DCGM_FI_DEV_GPU_TEMP": 60, "DCGM_FI_DEV_POWER_USAGE": 250.5, "DCGM_FI_DEV_SM_CLOCK": 1400,
                 "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 1000, "DCGM_FI_DEV_XID_ERRORS": 0}
            d.update(extra)
            return json.dumps(d).encode()
        def token(rid, ts):
            return json.dumps({"request_id": rid, "model": "m", "timestamp": ts, "prompt_tokens": 1, "completion_tokens": 2,
                               "total_tokens": 3, "latency_ms": 4}).encode()
        producer = Producer({"bootstrap.servers": brokers, "message.max.bytes": 40000000})
        out = []
        def send(topic, key, value, kind):
            def report(err, msg):
                assert err is None, err
                out.append({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "value": b64(value), "kind": kind})
            producer.produce(topic, key=key, value=value, on_delivery=report)
            producer.poll(0)
        if mode == "hostile":
            rng = random.Random(int(sys.argv[3]))
            valid = gpu("GPU-ok", 1736935200.5)
            hostile = [
                (M, valid.replace(b"250.5", b"NaN")), (M, valid.replace(b"250.5", b"Infinity")), (M, valid.replace(b"250.5", b"-Infinity")),
                (M, valid.replace(b"250.5", b"1e400")), (M, valid.replace(b"250.5", b"-1e400")),
                (M, valid.replace(b"1400", b"123456789012345678901234567890")), (T, token("big", 1736935200).replace(b": 4", b": 99999999999999999999")),
                (M, valid[:-1] + b', "DCGM_FI_DEV_GPU_UTIL": "ninety"}'), (M, valid[:-1] + b', "gpu_uuid": "GPU-other"}'),
                (M, valid[:-1] + b', "nested": {"a": 1, "a": 2}}'),
                (M, valid.replace(b'"fuzz"', b'"\\xff\\xfe"')), (M, valid.replace(b'"fuzz"', b'"\\xc0\\xaf"')),
                (M, valid.replace(b'"fuzz"', b'"\\\\ud800"')), (M, valid.replace(b'"fuzz"', b'"a\\x01b"')), (M, valid.replace(b'"fuzz"', b'"\\\\q"')),
                (M, b'{"k":' * 200 + b'1' + b'}' * 200), (T, b'[' * 5000 + b']' * 5000),
                (M, valid.replace(b'"GPU-ok"', b'42')), (M, valid.replace(b"50", b'"50"', 1)), (M, valid.replace(b"50", b"true", 1)),
                (M, valid.replace(b"50", b"null", 1)), (M, valid.replace(b"50", b'{"v": 50}', 1)), (T, token(7, 1736935200)),
                (M, b""), (T, b""), (M, None), (T, None),
                (M, gpu("GPU-ts", "1736935200")), (M, gpu("GPU-ts", "2025-01-15T10:00:00")), (M, gpu("GPU-ts", -5)),
                (M, gpu("GPU-ts", 1e17)), (M, gpu("GPU-ts", None)), (T, token("r-ts", [1])),
                (M, b'{"node": "n"}'), (T, b'{"request_id": "r"}'),
                (M, b'["an", "array"]'), (T, b'"a string"'), (M, b"42"), (T, b"true"), (M, b"null"),
                (M, valid + b" trailing"), (M, valid[:40]), (T, b"\\xef\\xbb\\xbf" + token("bom", 1736935200)),
                (M, bytes(rng.randrange(256) for _ in range(2 * 1024 * 1024))), (T, b"{" + b"x" * (5 * 1024 * 1024)),
            ] + [(rng.choice([M, T]), bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))) for _ in range(6)]
            # Valid samples keyed by GPU (as the producer does: the rollups need a GPU on one partition).
            valids = [(M, b"GPU-%d" % (i % 4), gpu("GPU-%d" % (i % 4), ts)) for i, ts in enumerate(
                [1736935200.25, 1736935201, 1736935202480, "2025-01-15T10:00:03Z", "2025-01-15T11:00:04.5+01:00"] * 6)]
            valids += [(T, b"req-%d" % i, token("req-%d" % i, 1736935200 + i)) for i in range(30)]
            mixed = [(t, b"k%d" % i if i % 3 else None, v, "hostile") for i, (t, v) in enumerate(hostile)]
            mixed += [(t, k, v, "valid") for t, k, v in valids]
            rng.shuffle(mixed)
            for topic, key, value, kind in mixed:
                send(topic, key, value, kind)
        elif mode == "one":
            send(M, sys.argv[3].encode(), gpu(sys.argv[3], time.time()), "valid")
        elif mode == "refused":
            send(M, b"r0", gpu("GPU-big", 1736935200, note="x" * (17 * 1024 * 1024)), "refused")
            for i in range(20):
                send(M, b"v%d" % i, gpu("GPU-%d" % (i % 2), 1736935200 + i), "valid")
        if mode != "letters":
            assert producer.flush(30) == 0
            print(json.dumps(out))
        else:
            consumer = Consumer({"bootstrap.servers": brokers, "group.id": "letters", "enable.auto.commit": False})
            consumer.assign([TopicPartition("pipeline.deadletter.v1", p, -2) for p in range(3)])
            letters, idle = [], 0
            while idle < 12:
                message = consumer.poll(0.25)
                if message is None or message.error():
                    idle += 1
                    continue
                idle = 0
                headers = {k: v.decode("utf-8", "replace") for k, v in (message.headers() or []) if k != "dlq.key"}
                letters.append({"key": message.key().decode(), "value": b64(message.value()), "headers": headers})
            print(json.dumps(letters))
        """

    struct Record {
        let id: String
        let value: Data?
        let kind: String
    }

    /// Runs a mode of the script and returns the records it produced.
    static func produce(_ pipeline: PipelineTests.Pipeline, _ arguments: [String]) async throws -> [Record] {
        let script = pipeline.cli.write("hostile.py", Self.script)
        let result = try await pipeline.cli.run([script, arguments[0], pipeline.broker.address] + arguments.dropFirst(), executable: Services.python)
        guard result.code == 0, let list = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            throw PipelineTests.PipelineError("hostile.py \(arguments[0]) failed: \(result.stderr)")
        }
        return list.map { r in
            Record(id: "\(r["topic"]!)/\(r["partition"]!)/\(r["offset"]!)", value: (r["value"] as? String).flatMap { Data(base64Encoded: $0) },
                   kind: r["kind"] as? String ?? "")
        }
    }

    /// Every dead letter: key, value bytes (nil for a null value) and headers.
    static func letters(_ pipeline: PipelineTests.Pipeline) async throws -> [(key: String, value: Data?, headers: [String: String])] {
        let script = pipeline.cli.write("hostile.py", Self.script)
        let result = try await pipeline.cli.run([script, "letters", pipeline.broker.address], executable: Services.python)
        guard result.code == 0, let list = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            throw PipelineTests.PipelineError("reading dead letters failed: \(result.stderr)")
        }
        return list.map { ($0["key"] as? String ?? "", ($0["value"] as? String).flatMap { Data(base64Encoded: $0) }, $0["headers"] as? [String: String] ?? [:]) }
    }

    /// The SHA-256 of `data`, by Python's hashlib (an independent implementation).
    static func sha256(_ data: Data, cli: CLI) async throws -> String {
        let file = cli.write("digest.bin", "")
        try data.write(to: URL(fileURLWithPath: file))
        let result = try await cli.run(["-c", "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())", file],
                                       executable: Services.python)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A dead letter's record coordinates, `topic/partition/offset`, from its headers.
    static func coordinates(_ letter: (key: String, value: Data?, headers: [String: String])) -> String {
        "\(letter.headers["dlq.topic"] ?? "")/\(letter.headers["dlq.partition"] ?? "")/\(letter.headers["dlq.offset"] ?? "")"
    }

    /// Checks every dead letter against the record it stands for: its key is the record's document
    /// id (`topic/topicID/partition/offset`), its value byte for byte the record's, or for an
    /// oversized one a reference whose digest is the original's. Returns the keys of the mismatches.
    static func mismatchedLetters(_ letters: [(key: String, value: Data?, headers: [String: String])], sent: [String: Record], cli: CLI) async throws -> [String] {
        var bad: [String] = []
        for letter in letters {
            let topicID = letter.headers["dlq.topic_id"] ?? ""
            guard let original = sent[coordinates(letter)], letter.headers["dlq.reason"]?.isEmpty == false, topicID.count == 22,
                  letter.key == "\(letter.headers["dlq.topic"] ?? "")/\(topicID)/\(letter.headers["dlq.partition"] ?? "")/\(letter.headers["dlq.offset"] ?? "")" else {
                bad.append(letter.key)
                continue
            }
            switch letter.headers["dlq.value"] {
            case "reference":
                var digest: String?
                if let value = original.value { digest = try await sha256(value, cli: cli) }
                if letter.headers["dlq.sha256"] != digest || letter.headers["dlq.size"] != original.value.map({ String($0.count) }) { bad.append(letter.key) }
            case "tombstone":
                if original.value != nil || letter.value != nil { bad.append(letter.key) }
            default:
                if letter.value != original.value { bad.append(letter.key) }
            }
        }
        return bad
    }

    @Test func fortyHostileRecordsNeverStopThePipelineAndEachDeadLetterKeepsItsBytes() async throws {
        let pipeline = try await PipelineTests.Pipeline(mongoFile: true)
        defer { pipeline.stop() }
        let sent = try await Self.produce(pipeline, ["hostile", "20261201"])
        let hostile = sent.filter { $0.kind == "hostile" }
        let valid = sent.filter { $0.kind == "valid" }
        #expect(hostile.count >= 40)

        let (processor, port) = try await pipeline.startProcessor()
        defer { if processor.isRunning { Services.stop(processor) } }
        try await waitUntil(timeout: .seconds(180), every: .milliseconds(500)) {
            pipeline.stats(port).map { $0.metrics + $0.tokens == valid.count && $0.deadLettered == hostile.count } ?? false
        }
        // A valid record behind all of them lands within seconds.
        let sentinel = try await Self.produce(pipeline, ["one", "GPU-sentinel"])
        try await waitUntil(timeout: .seconds(10)) { pipeline.stats(port).map { $0.metrics + $0.tokens == valid.count + 1 } ?? false }
        #expect(sentinel.count == 1)
        #expect(processor.isRunning, "no record stops the processor: \(processor.stderr.suffix(2000))")
        let gpus = try #require(Services.json(port: port, "/gpu/info"))
        #expect(gpus["GPU-sentinel"] != nil, "/gpu/info shows the sentinel's GPU")
        for k in 0..<4 {
            let newest = (gpus["GPU-\(k)"] as? [String: Any])?["timestamp"] as? String
            #expect(newest == "2025-01-15T11:00:04.5+01:00", "/gpu/info keeps GPU-\(k)'s newest sample by event time, whatever the arrival order")
        }

        let letters = try await Self.letters(pipeline)
        #expect(Set(letters.map(Self.coordinates)) == Set(hostile.map(\.id)), "exactly the hostile records are dead-lettered")
        #expect(letters.count == hostile.count, "one dead letter each")
        let byID = Dictionary(uniqueKeysWithValues: sent.map { ($0.id, $0) })
        #expect(try await Self.mismatchedLetters(letters, sent: byID, cli: pipeline.cli) == [])
        let reasons = letters.compactMap { $0.headers["dlq.reason"] }
        for expected in ["non-finite number NaN", "duplicate key 'DCGM_FI_DEV_GPU_UTIL'", "duplicate key 'a'", "invalid UTF-8",
                         "outside the 64-bit range", "too large for a double", "nested deeper than 64 levels", "tombstone", "empty value",
                         "unpaired surrogate", "field 'gpu_uuid' must be a string", "not a JSON object", "is not epoch seconds"] {
            #expect(reasons.contains { $0.contains(expected) }, "a reason mentions \(expected): \(reasons)")
        }
        #expect(letters.contains { $0.headers["dlq.value"] == "reference" }, "oversized records are dead-lettered by reference")
        // Every accepted timestamp form reaches the rollups.
        let counted = try await pipeline.rollupCountAndStoredSamples()
        #expect(counted.rolledUp == counted.stored && counted.stored == valid.filter { $0.id.hasPrefix("gpu.") }.count + 1, "\(counted)")

        // The database goes away: the batch is held, /ready says so, and SIGTERM still stops within 10 s.
        pipeline.mongo.stop()
        _ = try await Self.produce(pipeline, ["one", "GPU-held"])
        try await waitUntil(timeout: .seconds(20)) {
            (Services.get(port: port, "/metrics")?.body ?? "").split(separator: "\n")
                .first { $0.hasPrefix("processor_batch_held_seconds ") }.map { !$0.hasSuffix(" 0") && !$0.hasSuffix(" 0.0") } ?? false
        }
        let asked = ContinuousClock.now
        kill(processor.pid, SIGTERM)
        try await waitUntil(timeout: .seconds(10)) { !processor.isRunning }
        #expect(ContinuousClock.now - asked < .seconds(10))
        processor.wait()
        #expect(processor.exitCode == 0, "SIGTERM while a batch is retried is a clean stop: \(processor.stderr.suffix(1000))")
    }

    @Test func aDocumentTheDatabaseRefusesIsDeadLetteredAndTheRestOfItsBatchIsStored() async throws {
        let pipeline = try await PipelineTests.Pipeline()
        defer { pipeline.stop() }
        let sent = try await Self.produce(pipeline, ["refused"])
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        // Eventually (a full test run's load slows the pipeline; the test is about where the records end).
        try await waitUntil(timeout: .seconds(180), every: .milliseconds(500)) { pipeline.stats(port).map { $0.metrics == 20 && $0.deadLettered == 1 } ?? false }
        #expect(processor.isRunning)
        let letters = try await Self.letters(pipeline)
        #expect(letters.count == 1)
        let letter = try #require(letters.first)
        #expect(letter.headers["dlq.reason"]?.contains("refused by the database") == true, "\(letter.headers)")
        #expect(letter.headers["dlq.value"] == "reference", "a 17 MB record's dead letter carries a reference, not the bytes")
        let byID = Dictionary(uniqueKeysWithValues: sent.map { ($0.id, $0) })
        #expect(Self.coordinates(letter) == sent.first { $0.kind == "refused" }?.id)
        #expect(try await Self.mismatchedLetters(letters, sent: byID, cli: pipeline.cli) == [])
    }

    @Test func metricsPassPromtoolCheckMetrics() async throws {
        let pipeline = try await PipelineTests.Pipeline()
        defer { pipeline.stop() }
        try await pipeline.produce(200)
        let (processor, port) = try await pipeline.startProcessor()
        defer { Services.stop(processor) }
        try await waitUntil(timeout: .seconds(180), every: .milliseconds(500)) { pipeline.stats(port).map { $0.metrics == 100 } ?? false }
        let body = try #require(Services.get(port: port, "/metrics")?.body)
        #expect(body.contains("processor_consumer_lag{"))
        #expect(body.contains("processor_gpu_utilisation_percent{gpu=\"GPU-"), "per-GPU gauges for the GPU fleet dashboard")
        #expect(body.contains("processor_end_to_end_latency_seconds_count"))
        let file = pipeline.cli.write("metrics.txt", body)
        let checked = try await pipeline.cli.run(["-c", "promtool check metrics < \"$0\"", file], executable: "/bin/sh")
        #expect(checked.code == 0, "promtool check metrics: \(checked.stdout)\(checked.stderr)")
    }
}
