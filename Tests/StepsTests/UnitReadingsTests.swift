@testable import App
import Engine
import Foundation
@testable import Infra
@testable import NodeRuntime
import PlanLanguage
import Testing
@testable import Transport

/// The no-op `up`'s probes: every unit's state read in one batch per node (`CommandBatch`,
/// `UnitReadings`), on real sandbox nodes under OpenRC.
@Suite(.serialized) struct UnitReadingsTests {
    /// Counts the commands it passes on to the real runner.
    actor Counter {
        private(set) var commands = 0
        func count() { commands += 1 }
    }

    struct CountingRunner: CommandRunner {
        let inner: any CommandRunner
        let counter: Counter
        var location: String { inner.location }
        func run(_ command: String, timeout: Duration?) async throws -> CommandResult {
            await counter.count()
            return try await inner.run(command, timeout: timeout)
        }
    }

    @Test func aBatchRunsItsCommandsTogetherAndGivesBackEachOutputInOrder() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The first command waits (5 s at most) for a file the last one makes: run one after the
        // other, in order, it would print "alone".
        let batch = CommandBatch([
            "for i in $(seq 50); do [ -e '\(directory.path)/made' ] && { echo met; exit 0; }; sleep 0.1; done; echo alone",
            "printf 'a\\nb\\n'",
            "printf 'no line break'",
            "echo partial; echo hidden >&2; exit 3",
            "true",
            "printf '\\n\\n'",
            "touch '\(directory.path)/made'; echo made",
        ])
        let runner = LocalCommandRunner(processes: ProcessSupervisor())
        let outputs = try await batch.run(on: runner, timeout: .seconds(30))
        #expect(outputs == ["met\n", "a\nb\n", "no line break", "partial\n", "", "\n\n", "made\n"])
        #expect(batch.outputs("\u{1E}0\nonly one of two\n") == nil, "a batch cut short is no answer")
    }

    @Test func aBatchsPreludeRunsOnceBeforeItsCommandsAndEachReadsWhatItSet() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("prelude-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let batch = CommandBatch(["echo \"$__pb_seen\"", "echo \"$__pb_seen\" again"],
                                 prelude: "__pb_seen=hello; echo ran >> '\(directory.path)/prelude'")
        let outputs = try await batch.run(on: LocalCommandRunner(processes: ProcessSupervisor()), timeout: .seconds(30))
        #expect(outputs == ["hello\n", "hello again\n"])
        #expect(try String(contentsOf: directory.appendingPathComponent("prelude"), encoding: .utf8) == "ran\n", "once")
    }

    @Test func aSystemdUnitIsRunningWhenThePreludesOneAnswerSaysSoAndAskedAloneWithoutOne() async throws {
        let runner = LocalCommandRunner(processes: ProcessSupervisor())
        let broker = ServiceControl(unit: ServiceUnit(name: "pipeline-broker", description: "d", command: "/bin/true"), initSystem: .systemd)
        let node = ServiceControl(unit: ServiceUnit(name: "pipeline-node", description: "d", command: "/bin/true"), initSystem: .systemd)
        // What the prelude leaves: the active units, padded (a name that contains another's is not it).
        for (active, brokerRuns, nodeRuns) in [(" pipeline-broker pipeline-node-exporter ", true, false), (" ", false, false), (" pipeline-node ", false, true)] {
            for (control, expected) in [(broker, brokerRuns), (node, nodeRuns)] {
                let result = try await runner.run("__pb_active='\(active)'; \(control.running)", timeout: .seconds(10))
                #expect(result.succeeded == expected, "\(control.unit.name) with '\(active)'")
            }
        }
        // Without a prelude's answer each unit asks systemctl itself, and a systemctl that answers
        // for fewer units than asked leaves no answer at all.
        #expect(broker.running.contains("systemctl is-active --quiet pipeline-broker"))
        // A systemctl that says "active" once, whatever it is asked: a shell function (a script
        // written and executed at once can be "text file busy" under parallel tests).
        let fake = "systemctl() { echo active; }"
        let one = try await runner.run("\(fake); \(ServiceControl.activePrelude(of: ["pipeline-broker"])); echo \"[${__pb_active-unset}]\"", timeout: .seconds(10))
        #expect(one.stdout == "[ pipeline-broker ]\n")
        let short = try await runner.run("\(fake); \(ServiceControl.activePrelude(of: ["pipeline-broker", "pipeline-node"])); echo \"[${__pb_active-unset}]\"", timeout: .seconds(10))
        #expect(short.stdout == "[unset]\n", "systemctl answered for one unit of two")
    }

    @Test func theBrokersNodeListsItsTopicsOnceForTheBrokersReadinessAndTheTopicCheck() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("topics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A tansu that counts its listings and lists what `listing` holds.
        let tansu = directory.appendingPathComponent("tansu"), listing = directory.appendingPathComponent("listing")
        try "echo x >> '\(directory.path)/count'\ncat '\(listing.path)'\n".write(to: tansu, atomically: true, encoding: .utf8)
        let all = PipelineSpec.topics.map { #"{"name":"\#($0)","partitions":[0,1,2]}"# }
        var programs = ProcessesRuntime.Programs()
        // Run by /bin/sh, not executed itself: a file just written can be "text file busy" while a
        // process that another test spawned meanwhile still holds the writer's descriptor.
        programs.tansu = "/bin/sh \(tansu.path)"
        let broker = ProcessesRuntime(pipeline: PipelineSpec(), programs: programs, rules: "")
            .broker(on: RuntimeNode(name: "control-plane", address: "127.0.0.1", isControlPlane: true))
        let ready = try #require(broker.ready)
        let runner = LocalCommandRunner(processes: ProcessSupervisor())
        func listings() throws -> Int {
            ((try? String(contentsOf: directory.appendingPathComponent("count"), encoding: .utf8)) ?? "").split(separator: "\n").count
        }

        for (topics, isReady) in [(all, true), (Array(all.dropLast()), false)] {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("count"))
            try "[\(topics.joined(separator: ","))]\n".write(to: listing, atomically: true, encoding: .utf8)
            let batch = CommandBatch(["(\(ready)) && echo ready || echo not", ProcessesRuntime.topicsCommand(broker)],
                                     prelude: ProcessesRuntime.topicsPrelude(broker))
            let outputs = try await batch.run(on: runner, timeout: .seconds(30))
            #expect(outputs.first == (isReady ? "ready\n" : "not\n"), "\(topics.count) topics: \(outputs)")
            #expect(ProcessesRuntime.topics(listed: outputs.last ?? "")?.count == topics.count, "\(outputs)")
            #expect(try listings() == 1, "one listing for both")
        }
        // Alone (no batch, no prelude), each lists for itself.
        try "[\(all.joined(separator: ","))]\n".write(to: listing, atomically: true, encoding: .utf8)
        let alone = try await runner.run("(\(ready)) && \(ProcessesRuntime.topicsCommand(broker))", timeout: .seconds(30))
        #expect(alone.succeeded && ProcessesRuntime.topics(listed: alone.stdout)?.count == all.count, "\(alone.stdout)")
        #expect(try listings() == 3)
    }

    /// Answers `connections` HTTP requests on 127.0.0.1 with `status`; returns its port.
    static func answering(_ status: String, connections: Int) throws -> Int {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        Thread.detachNewThread {
            for _ in 0..<connections {
                let client = accept(listener, nil, nil)
                // The whole request first, as a real server reads it (bash may write it in parts).
                var request: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1024)
                while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
                    let count = read(client, &chunk, chunk.count)
                    if count <= 0 { break }
                    request += chunk.prefix(count)
                }
                let response = Array("HTTP/1.0 \(status)\r\nContent-Length: 0\r\n\r\n".utf8)
                _ = write(client, response, response.count)
                close(client)
            }
            close(listener)
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func anHTTPProbePassesOnA2xxAndFailsOtherwiseInBashItselfAndFromAPOSIXShell() async throws {
        let runner = LocalCommandRunner(processes: ProcessSupervisor())
        let control = ServiceControl(unit: ServiceUnit(name: "pipeline-web", description: "d", command: "/bin/true"), initSystem: .systemd)
        for (status, passes) in [("200 OK", true), ("503 Service Unavailable", false)] {
            let port = try Self.answering(status, connections: 2)
            let service = PlacedService(unit: control.unit, node: RuntimeNode(name: "n", address: "127.0.0.1", isControlPlane: true),
                                        health: .http(host: "127.0.0.1", port: port, path: "/ready"))
            let probe = ServiceInstaller.probeCommand(service, control: control)
            // The runner's shell is /bin/sh (dash here: the probe runs in a bash of its own), then bash.
            for command in [probe, "bash -c \(Shell.quoted(probe))"] {
                let result = try await runner.run(command, timeout: .seconds(10))
                #expect(result.succeeded == passes, "\(status): \(command) \(result.summary)")
            }
        }
    }

    @Test func oneBatchPerNodeReadsEveryUnitAndStillFindsAStoppedOne() async throws {
        try await withSandboxNodes(image: ServiceManagerTests.image) { nodes in
            let hosts = try await nodes.start(2)
            let pool = SSHPool(store: nodes.store)
            func placed(_ name: String, on host: SandboxHost, seconds: Int) -> PlacedService {
                PlacedService(unit: ServiceUnit(name: name, description: "test unit", command: "/bin/sleep", arguments: [String(seconds)]),
                              node: RuntimeNode(name: host.node, address: host.address, isControlPlane: host.node == hosts[0].node), health: .running)
            }
            let first = [placed("pipeline-one", on: hosts[0], seconds: 4243), placed("pipeline-two", on: hosts[0], seconds: 4244)]
            let second = [placed("pipeline-three", on: hosts[1], seconds: 4245), placed("pipeline-four", on: hosts[1], seconds: 4246)]
            for service in first + second {
                let host = service.node.name == hosts[0].node ? hosts[0] : hosts[1]
                try await ServiceInstaller(pool: pool, endpoint: nodes.endpoint(host)).install(service, timeout: .seconds(60)) { _ in }
            }
            let stopped = try await pool.run("rc-service pipeline-one stop", on: nodes.endpoint(hosts[0]))
            #expect(stopped.succeeded, "\(stopped.stderr)")
            // A killed supervisor leaves OpenRC saying "started" with nobody supervising the program.
            let killed = try await pool.run("kill -9 $(cat /run/supervise-pipeline-four.pid)", on: nodes.endpoint(hosts[1]))
            #expect(killed.succeeded, "\(killed.stderr)")

            let counters = [Counter(), Counter()]
            let readings = UnitReadings()
            let plan: @Sendable () throws -> [String: UnitReadings.NodeBatch] = {
                var batches: [String: UnitReadings.NodeBatch] = [:]
                for (index, (host, services)) in [(hosts[0], first), (hosts[1], second)].enumerated() {
                    let runner = CountingRunner(inner: NodeCommandRunner(pool: pool, endpoint: nodes.endpoint(host)), counter: counters[index])
                    batches[host.node] = .init(runner: runner, batch: CommandBatch(services.map { ServiceInstaller.stateScript(of: $0, initSystem: .openrc) }))
                }
                return batches
            }
            var states: [String: ServiceInstaller.State] = [:]
            for service in first + second {
                let output = try #require(await readings.output(of: ServiceInstaller.stateScript(of: service, initSystem: .openrc), on: service.node.name, plan: plan))
                states[service.unit.name] = ServiceInstaller.state(of: service, from: output, initSystem: .openrc)
            }
            #expect(states["pipeline-one"]?.problem == "its unit is not running", "the stopped unit is found: \(states)")
            #expect(states["pipeline-four"]?.problem == "its unit is not running", "the unit whose supervisor died is found: \(states)")
            #expect(states["pipeline-two"]?.satisfied == true && states["pipeline-three"]?.satisfied == true, "\(states)")
            let (firstCommands, secondCommands) = (await counters[0].commands, await counters[1].commands)
            #expect(firstCommands == 1 && secondCommands == 1, "one command per node for all of its units")
            for (host, services) in [(hosts[0], first), (hosts[1], second)] {
                for service in services {
                    let live = try await ServiceInstaller(pool: pool, endpoint: nodes.endpoint(host)).state(of: service)
                    #expect(live == states[service.unit.name], "the batch reads what the unit's own probe reads: \(service.unit.name)")
                    let status = try await pool.run("rc-service \(service.unit.name) status", on: nodes.endpoint(host))
                    #expect(status.succeeded == live.running, "running is what OpenRC's status says: \(service.unit.name) \(status.stdout)")
                }
            }

            await readings.invalidate()
            #expect(await readings.output(of: ServiceInstaller.stateScript(of: second[0], initSystem: .openrc), on: hosts[1].node, plan: plan) == nil,
                    "once something was applied, checks read live")
            let afterwards = await counters[1].commands
            #expect(afterwards == 1)
            await pool.closeAll()
        }
    }
}
