import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The producer against a real Kafka-compatible broker (Tansu) on a loopback port, read back by a
/// real consumer (librdkafka 2.16 through confluent-kafka), both installed by scripts/bootstrap.
@Suite(.serialized) struct ProducerTests {
    static let tools = Services.tools
    static let python = Services.python
    static let producer = CLI.repository.appendingPathComponent(".build/\(Services.workloadBuild)/producer").path
    static let topics = ["gpu.metrics.v1", "token.usage.v1"]

    static let kafkaScript = """
        import json, sys
        from confluent_kafka import Consumer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic
        mode, brokers, topics = sys.argv[1], sys.argv[2], sys.argv[3:]
        if mode == "create":
            admin = AdminClient({"bootstrap.servers": brokers})  # must outlive the futures
            for topic, future in admin.create_topics([NewTopic(t, 3, 1) for t in topics]).items():
                future.result(10)
        elif mode == "produce":
            from confluent_kafka import Producer
            producer = Producer({"bootstrap.servers": brokers})
            for line in open(topics[0]):
                topic, key, payload = line.rstrip("\\n").split("\\t", 2)
                producer.produce(topic, key=key, value=payload)
            assert producer.flush(10) == 0
        else:
            consumer = Consumer({"bootstrap.servers": brokers, "group.id": "verify", "enable.auto.commit": False})
            consumer.assign([TopicPartition(t, p, -2) for t in topics for p in range(3)])
            out, idle = {t: [] for t in topics}, 0
            while idle < 12:
                message = consumer.poll(0.25)
                if message is None or message.error():
                    idle += 1
                    continue
                idle = 0
                out[message.topic()].append({"key": message.key().decode(), "value": json.loads(message.value())})
            print(json.dumps(out))
        """


    /// A test directory, Tansu on a loopback port with the pipeline's topics, and the kafka helper script.
    static func brokerWithTopics() async throws -> (CLI, Broker, String) {
        let cli = CLI()
        do {
            let broker = try await Broker(cli: cli)
            let script = cli.write("kafka.py", kafkaScript)
            do {
                try await broker.createTopics(topics, cli: cli, script: script)
            } catch {
                broker.stop()
                throw error
            }
            return (cli, broker, script)
        } catch {
            cli.cleanUp()
            throw error
        }
    }

    @Test func producedEventsArriveKeyedWithDCGMFieldsAndExactCounts() async throws {
        let (cli, broker, script) = try await Self.brokerWithTopics()
        defer { broker.stop(); cli.cleanUp() }

        let produced = try await cli.run(["--brokers", broker.address, "--count", "2000", "--gpus", "4", "--seed", "7", "--node", "node-a"],
                                         executable: Self.producer, environment: ["LD_LIBRARY_PATH": Self.tools.appendingPathComponent("lib").path])
        #expect(produced.code == 0, "\(produced.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(produced.stdout.utf8)) as? [String: Any]
        #expect(summary?["delivered"] as? Int == 2000)
        #expect(summary?["failed"] as? Int == 0)

        let consumed = try await cli.run([script, "consume", broker.address] + Self.topics, executable: Self.python)
        #expect(consumed.code == 0, "\(consumed.stderr)")
        let messages = try #require(try JSONSerialization.jsonObject(with: Data(consumed.stdout.utf8)) as? [String: [[String: Any]]])
        let metrics = messages["gpu.metrics.v1"] ?? []
        let tokens = messages["token.usage.v1"] ?? []
        #expect(metrics.count == 1000)
        #expect(tokens.count == 1000)

        let fields = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
                      "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_XID_ERRORS"]
        var uuids = Set<String>()
        for message in metrics {
            let value = message["value"] as? [String: Any] ?? [:]
            #expect(message["key"] as? String == value["gpu_uuid"] as? String)
            #expect(fields.allSatisfy { value[$0] != nil })
            #expect((0...100).contains(value["DCGM_FI_DEV_GPU_UTIL"] as? Int ?? -1))
            #expect(value["node"] as? String == "node-a")
            uuids.insert(message["key"] as? String ?? "")
        }
        #expect(uuids.count == 4)
        let requestIDs = Set(tokens.compactMap { $0["key"] as? String })
        #expect(requestIDs.count == 1000, "request ids are unique keys")
        for message in tokens.prefix(50) {
            let value = message["value"] as? [String: Any] ?? [:]
            #expect(value["total_tokens"] as? Int == (value["prompt_tokens"] as? Int ?? 0) + (value["completion_tokens"] as? Int ?? 0))
        }
    }

    @Test func unreachableBrokerIsReportedAsUndeliveredWithExitCode1() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["--brokers", "127.0.0.1:1", "--count", "10"], executable: Self.producer,
                                       environment: ["LD_LIBRARY_PATH": Self.tools.appendingPathComponent("lib").path, "MESSAGE_TIMEOUT_MS": "1500"])
        #expect(result.code == 1)
        #expect(result.stderr.contains("not delivered"))
    }

    @Test func unpacedSamplesSpreadOverSimulatedTimeEndingNowAndTemperatureMoves() async throws {
        let (cli, broker, script) = try await Self.brokerWithTopics()
        defer { broker.stop(); cli.cleanUp() }
        let before = Date().timeIntervalSince1970
        let produced = try await cli.run(["--brokers", broker.address, "--count", "2000", "--gpus", "4", "--source", "synthetic"],
                                         executable: Self.producer, environment: Services.libraryPath)
        #expect(produced.code == 0, "\(produced.stderr)")
        let consumed = try await cli.run([script, "consume", broker.address, "gpu.metrics.v1"], executable: Self.python)
        let samples = (try JSONSerialization.jsonObject(with: Data(consumed.stdout.utf8)) as? [String: [[String: Any]]])?["gpu.metrics.v1"] ?? []
        #expect(samples.count == 1000)
        let byGPU = Dictionary(grouping: samples.compactMap { $0["value"] as? [String: Any] }) { $0["gpu_uuid"] as? String ?? "" }
        #expect(byGPU.count == 4)
        for (gpu, values) in byGPU {
            let times = values.compactMap { $0["timestamp"] as? Double }.sorted()
            let span = (times.last ?? 0) - (times.first ?? 0)
            #expect(span >= 240 && span <= 260, "\(gpu): 250 samples one simulated second apart, spanning \(span) s")
            #expect((times.last ?? 0) <= Date().timeIntervalSince1970 && (times.last ?? 0) >= before - 5, "the run ends at its start time")
            let temperatures = Set(values.compactMap { $0["DCGM_FI_DEV_GPU_TEMP"] as? Int })
            #expect(temperatures.count > 3, "\(gpu): temperature follows the load over simulated time: \(temperatures)")
        }
    }

    @Test func continuousWithoutARateRunsPacedLikeTheContainerImage() async throws {
        let (cli, broker, _) = try await Self.brokerWithTopics()
        defer { broker.stop(); cli.cleanUp() }
        let started = ContinuousClock.now
        let producer = try cli.start(["--brokers", broker.address, "--continuous", "--source", "synthetic"],
                                     executable: Self.producer, environment: Services.libraryPath)
        try await Task.sleep(for: .seconds(3))
        kill(producer.pid, SIGTERM)
        try await producer.finish()
        // A loaded machine may sleep longer than asked: the pace is judged against the time it ran.
        let ran = (ContinuousClock.now - started) / .seconds(1)
        #expect(producer.exitCode == 0, "\(producer.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(producer.stdout.utf8)) as? [String: Any]
        let delivered = summary?["delivered"] as? Int ?? -1
        #expect(delivered >= 100 && Double(delivered) <= 200 * ran * 1.25 + 50,
                "about 200 events/s, not a flood: \(delivered) in \(String(format: "%.1f", ran)) s")
    }

    @Test func aProducersFirstEventsGoAtOnceAndTheRestWaitForTheLinger() async throws {
        let (cli, broker, _) = try await Self.brokerWithTopics()
        defer { broker.stop(); cli.cleanUp() }
        let file = cli.directory.appendingPathComponent("producer-state.json").path
        // A linger far longer than the waits below: without the first flush nothing would be
        // delivered for 60 s (the batch never fills at 5 events/s).
        let running = try cli.start(["--brokers", broker.address, "--source", "synthetic", "--state-file", file, "--continuous", "--rate", "5"],
                                    executable: Self.producer, environment: Services.libraryPath.merging(["LINGER_MS": "60000", "MESSAGE_TIMEOUT_MS": "120000"]) { $1 })
        defer { if running.isRunning { kill(running.pid, SIGKILL); running.wait() } }  // a failed wait's leftover only
        let acknowledged = { SelfHealingTests.state(file)?.runs.last?["acknowledged"] as? Int ?? 0 }
        try await waitUntil(timeout: .seconds(20)) { acknowledged() > 0 }
        #expect(acknowledged() == 2, "one event of each topic, flushed at once")
        try await waitUntil(timeout: .seconds(20)) { (SelfHealingTests.state(file)?.runs.last?["produced"] as? Int ?? 0) >= 20 }
        #expect(acknowledged() == 2, "the later events wait for the linger")
        try await Services.terminate(running)
        #expect(running.exitCode == 0 && acknowledged() >= 20, "on SIGTERM the rest is flushed: \(running.stderr)")
    }

    @Test func aProducerToMissingTopicsCreatesNothingReportsItsFailuresAndFlowsOnceTheTopicsExist() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let broker = try await Broker(cli: cli)
        defer { broker.stop() }
        let file = cli.directory.appendingPathComponent("producer-state.json").path
        let arguments = ["--brokers", broker.address, "--source", "synthetic", "--state-file", file]

        // Nothing to send to: every message fails, and no topic appears (Tansu would create one with 4 partitions).
        let failing = try await cli.run(arguments + ["--count", "10"], executable: Self.producer,
                                        environment: Services.libraryPath.merging(["MESSAGE_TIMEOUT_MS": "3000"]) { $1 })
        #expect(failing.code == 1)
        #expect(failing.stderr.contains("not delivered") && failing.stderr.contains("exist"), "\(failing.stderr)")
        let failed = try #require(SelfHealingTests.state(file)?.runs.first)
        #expect(failed["produced"] as? Int == 10 && failed["acknowledged"] as? Int == 0 && failed["failed"] as? Int == 10, "\(failed)")
        #expect(try await SelfHealingTests.admin(cli, broker, "list") as? [String] == [], "a producer creates no topic")

        // A running producer waits for the topics, and its messages flow once they are created.
        let running = try cli.start(arguments + ["--continuous", "--rate", "50"], executable: Self.producer, environment: Services.libraryPath)
        try await waitUntil(timeout: .seconds(30)) {
            SelfHealingTests.state(file).map { $0.runs.count == 2 && ($0.runs[1]["produced"] as? Int ?? 0) >= 20 } ?? false
        }
        #expect(SelfHealingTests.state(file)?.runs[1]["acknowledged"] as? Int == 0)
        #expect(try await SelfHealingTests.admin(cli, broker, "list") as? [String] == [])
        for topic in Self.topics {
            let created = try await cli.run(["topic", "create", topic, "--partitions", "3", "--broker", "tcp://\(broker.address)"],
                                            executable: Self.tools.appendingPathComponent("bin/tansu").path)
            #expect(created.code == 0, "\(created.stderr)")
        }
        try await waitUntil(timeout: .seconds(30)) { (SelfHealingTests.state(file)?.runs[1]["acknowledged"] as? Int ?? 0) >= 100 }
        kill(running.pid, SIGTERM)
        try await running.finish()
        #expect(running.exitCode == 0, "\(running.stderr)")
        let run = try #require(SelfHealingTests.state(file)?.runs.last)
        #expect(run["ended"] as? Bool == true && run["failed"] as? Int == 0 && run["acknowledged"] as? Int == run["produced"] as? Int, "\(run)")

        // What the state file calls acknowledged is what the topics hold.
        let consumed = try await cli.run([cli.write("kafka.py", Self.kafkaScript), "consume", broker.address] + Self.topics, executable: Self.python)
        let messages = try #require(try JSONSerialization.jsonObject(with: Data(consumed.stdout.utf8)) as? [String: [[String: Any]]])
        let values = messages.values.flatMap { $0 }.compactMap { $0["value"] as? [String: Any] }
        #expect(values.count == run["acknowledged"] as? Int)
        #expect(values.allSatisfy { $0["producer_run"] as? String == run["run"] as? String }, "every message names its run")
        #expect(Set(values.compactMap { $0["event_seq"] as? Int }).count == values.count, "event_seq is unique within a run")
    }
}
