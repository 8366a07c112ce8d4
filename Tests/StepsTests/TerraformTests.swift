@testable import App
import Engine
import Foundation
@testable import Infra
import JSON
import Testing

/// The Terraform module and what provision reads from terraform.
@Suite struct TerraformTests {
    func run(_ arguments: [String], in directory: URL, config: URL) async throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment
        environment["TF_CLI_CONFIG_FILE"] = config.path
        environment["TF_DATA_DIR"] = directory.appendingPathComponent(".data").path
        let command = ProcessCommand("terraform", arguments, environment: environment, workingDirectory: directory.path)
        return try await ProcessSupervisor().run(command, redactor: Redactor(secrets: []), log: nil)
    }

    @Test func rootModuleIsFormattedAndValidOffline() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("tf-validate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let module = work.appendingPathComponent("module")
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("terraform"), to: module)
        let config = work.appendingPathComponent("terraform.rc")
        try Data(TerraformRunner.cliConfigText().utf8).write(to: config)

        let fmt = try await run(["fmt", "-check", "-recursive", "-no-color"], in: module, config: config)
        #expect(fmt.succeeded, "terraform fmt would change: \(fmt.standardOutput)")
        let initialised = try await run(["init", "-backend=false", "-input=false", "-no-color"], in: module, config: config)
        #expect(initialised.succeeded, "\(initialised.standardErrorTail)")
        let validate = try await run(["validate", "-no-color"], in: module, config: config)
        #expect(validate.succeeded, "\(validate.standardErrorTail)")
    }

    @Test func applyJSONLinesBecomeReadableProgressAndErrors() {
        let start = #"{"type":"apply_start","hook":{"resource":{"addr":"module.instances.aws_instance.node[\"worker-1\"]"},"action":"create"}}"#
        let done = #"{"type":"apply_complete","hook":{"resource":{"addr":"aws_vpc.this"},"action":"create","id_value":"vpc-1","elapsed_seconds":10}}"#
        let error = #"{"type":"diagnostic","diagnostic":{"severity":"error","summary":"creating EC2 Instance","detail":"UnauthorizedOperation"}}"#
        #expect(TerraformEvent.describe(start) == #"module.instances.aws_instance.node["worker-1"]: create started"#)
        #expect(TerraformEvent.describe(done) == "aws_vpc.this: create complete after 10s [id=vpc-1]")
        #expect(TerraformEvent.describe(#"{"type":"refresh_start"}"#) == nil)
        #expect(TerraformEvent.errors(in: [start, error, done]) == ["creating EC2 Instance - UnauthorizedOperation"])
    }

    @Test func everyResourceKindIsReadFromTheStateFileManagedResourcesOnlyAndAnUnreadableStateRefusesToSweep() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tf-state-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let runner = TerraformRunner(moduleSource: directory, stateDirectory: directory, variables: [:], providerOverride: nil, environment: [:])
        #expect(try runner.recordedResources().isEmpty, "no state file yet: nothing recorded")
        try FileManager.default.createDirectory(at: runner.workingDirectory, withIntermediateDirectories: true)
        let state = """
            {"version": 4, "resources": [
              {"mode": "managed", "type": "aws_instance", "name": "node", "instances": [
                {"index_key": "control-plane", "status": "tainted", "attributes": {"id": "i-1", "tags": {}}},
                {"index_key": "worker-1", "attributes": {"id": "i-2"}}]},
              {"mode": "data", "type": "aws_instance", "name": "lookup", "instances": [{"attributes": {"id": "i-9"}}]},
              {"mode": "managed", "type": "aws_vpc", "name": "this", "instances": [{"attributes": {"id": "vpc-1"}}]},
              {"mode": "managed", "type": "aws_default_security_group", "name": "closed", "instances": [{"attributes": {"id": "sg-0"}}]},
              {"mode": "managed", "type": "aws_security_group", "name": "nodes", "instances": [{"attributes": {"id": "sg-1"}}]},
              {"mode": "managed", "type": "aws_key_pair", "name": "admin", "instances": [{"attributes": {"id": "plan-admin"}}]},
              {"mode": "managed", "type": "aws_subnet", "name": "public", "instances": [{"attributes": {"id": "subnet-1"}}]},
              {"mode": "managed", "type": "aws_internet_gateway", "name": "this", "instances": [{"attributes": {"id": "igw-1"}}]},
              {"mode": "managed", "type": "aws_route_table", "name": "public", "instances": [{"attributes": {"id": "rtb-1"}}]},
              {"mode": "managed", "type": "aws_route_table_association", "name": "public", "instances": [{"attributes": {"id": "rtbassoc-1"}}]}]}
            """
        try Data(state.utf8).write(to: runner.stateFile)
        let recorded = try runner.recordedResources()
        #expect(recorded[.instance] == ["i-1", "i-2"])
        #expect(recorded[.vpc] == ["vpc-1"] && recorded[.subnet] == ["subnet-1"] && recorded[.internetGateway] == ["igw-1"])
        #expect(recorded[.securityGroup] == ["sg-1"], "the default security group goes with its VPC")
        #expect(recorded[.keyPair] == ["plan-admin"] && recorded[.routeTable] == ["rtb-1"] && recorded[.routeTableAssociation] == ["rtbassoc-1"])
        #expect(recorded.counts.values.reduce(0, +) == 9)

        try Data("{\"version\": 4, \"resources\": [".utf8).write(to: runner.stateFile)
        #expect(throws: StepFailure.self, "a state cut short must not read as 'nothing recorded', which would sweep everything") {
            try runner.recordedResources()
        }

        // Terraform truncates before it writes: killed then, the file is empty. On a first apply
        // nothing was recorded; after an earlier one, only the backup knows what was.
        try Data().write(to: runner.stateFile)
        #expect(try runner.recordedResources().isEmpty, "an empty state with no backup records nothing, as terraform reads it")
        try Data(state.utf8).write(to: runner.stateFile.appendingPathExtension("backup"))
        #expect(throws: StepFailure.self, "an empty state whose backup records resources must be restored, not swept") {
            try runner.recordedResources()
        }
    }

    @Test func planResourcesSubtractPerKindAndDescribeThemselvesInSweepOrder() {
        let cloud = PlanResources([.vpc: ["vpc-1", "vpc-2"], .instance: ["i-1", "i-2"], .keyPair: ["k"]])
        let state = PlanResources([.vpc: ["vpc-1"], .instance: ["i-1", "i-2"]])
        let leaked = cloud.subtracting(state)
        #expect(leaked == PlanResources([.vpc: ["vpc-2"], .keyPair: ["k"]]))
        #expect(leaked.description == "1 key pair (k), 1 VPC (vpc-2)")
        #expect(PlanResources().description == "nothing" && PlanResources().isEmpty)
        #expect(CloudResourceKind.allCases.first == .instance && CloudResourceKind.allCases.last == .vpc)
    }

    @Test func outputJSONValuesBecomeTypedStepOutputs() throws {
        let json = #"{"nodes": {"value": {"worker-1": {"id": "i-2", "public_ip": null}}, "sensitive": false}, "count": {"value": 3}, "flag": {"value": true}}"#
        guard case .object(let outputs)? = JSONValue.parse(json) else { throw StepFailure("not parsed") }
        guard case .object(let nodes)? = outputs["nodes"] else { throw StepFailure("no nodes") }
        #expect(nodes["value"]?.outputValue == .map(["worker-1": .map(["id": .string("i-2"), "public_ip": .string("")])]))
        guard case .object(let count)? = outputs["count"], case .object(let flag)? = outputs["flag"] else { throw StepFailure("missing") }
        #expect(count["value"]?.outputValue == .int(3))
        #expect(flag["value"]?.outputValue == .bool(true))
    }

    @Test func theApplyStreamsLastOutputsMessageIsTheStepOutputsWithoutSensitiveOnes() {
        let stream = [
            #"{"@level":"info","@message":"Terraform 1.11.4","type":"version","terraform":"1.11.4","ui":"1.2"}"#,
            #"{"@level":"info","@message":"Outputs: 1","type":"outputs","outputs":{"count":{"sensitive":false,"type":"number","value":1}}}"#,
            #"{"@level":"info","@message":"Apply complete!","type":"change_summary","changes":{"add":3,"change":0,"remove":0,"operation":"apply"}}"#,
            #"{"@level":"info","@message":"Outputs: 3","type":"outputs","outputs":{"count":{"sensitive":false,"type":"number","value":3},"#
                + #""token":{"sensitive":true,"type":"string"},"nodes":{"sensitive":false,"type":["object",{}],"value":{"worker-1":{"id":"i-2"}}}}}"#,
        ].joined(separator: "\n")
        #expect(TerraformRunner.reportedOutputs(stream) == ["count": .int(3), "nodes": .map(["worker-1": .map(["id": .string("i-2")])])])
        #expect(TerraformRunner.reportedOutputs(#"{"type":"version"}"#) == nil, "a stream without outputs asks `terraform output`")
    }

    @Test func terraformRunsWithItsCollectorTunedUnlessTheUserSetOne() {
        let runner = TerraformRunner(moduleSource: URL(fileURLWithPath: "/m"), stateDirectory: URL(fileURLWithPath: "/s"), variables: [:],
                                     providerOverride: nil, environment: ["AWS_ACCESS_KEY_ID": "k"])
        let tuned = runner.commandEnvironment(["PATH": "/bin"])
        #expect(tuned["GOGC"] == "400" && tuned["AWS_ACCESS_KEY_ID"] == "k" && tuned["PATH"] == "/bin" && tuned["TF_DATA_DIR"] == "/s/terraform-data")
        #expect(runner.commandEnvironment(["GOGC": "100"])["GOGC"] == "100", "the user's GOGC wins")
    }

    @Test func theProviderServersReattachLineIsReadOnlyWhenCompleteAndNamingAnAddress() {
        let line = #"{"registry.terraform.io/hashicorp/aws":{"Protocol":"grpc","ProtocolVersion":5,"Pid":42,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin1"}}}"#
        let output = "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='\(line)'\n"
        #expect(ProviderServer.reattachConfiguration(in: output) == line)
        #expect(ProviderServer.reattachConfiguration(in: String(output.prefix(150))) == nil, "a line not yet written in full")
        #expect(ProviderServer.reattachConfiguration(in: "TF_REATTACH_PROVIDERS='{\"aws\":{\"Pid\":1}}'") == nil, "no address")
        #expect(ProviderServer.reattachConfiguration(in: "Starting github.com/hashicorp/terraform-provider-aws") == nil)
    }

    /// The AWS provider from the filesystem mirror bootstrap installs, started as a server the way
    /// a sandbox step starts it, then stopped: by its step, and as an orphan a killed run left.
    @Test func theProviderServerServesUntilStoppedAndAnOrphanIsStoppedByTheNextRun() async throws {
        let mirror = URL(fileURLWithPath: TerraformRunner.filesystemMirror).appendingPathComponent("registry.terraform.io/hashicorp/aws")
        let version = try #require(try FileManager.default.contentsOfDirectory(atPath: mirror.path).sorted().last, "no AWS provider in \(mirror.path); run scripts/bootstrap")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("provider-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let installed = directory.appendingPathComponent("data/providers/registry.terraform.io/hashicorp/aws/\(version)")
        try FileManager.default.createDirectory(at: installed, withIntermediateDirectories: true)
        for platform in try FileManager.default.contentsOfDirectory(atPath: mirror.appendingPathComponent(version).path) {
            try FileManager.default.createSymbolicLink(at: installed.appendingPathComponent(platform), withDestinationURL: mirror.appendingPathComponent("\(version)/\(platform)"))
        }
        let record = ProviderServer.recordFile(directory)
        let environment = ProcessInfo.processInfo.environment
        let server = try await ProviderServer.start(dataDirectory: directory.appendingPathComponent("data"), stateDirectory: directory, environment: environment)
        let pid = try #require(JSONValue.parse(server.reattach)?["registry.terraform.io/hashicorp/aws"]?["Pid"]?.int)
        #expect(Int32(pid) == server.process.pid && server.process.isRunning && FileManager.default.fileExists(atPath: record.path))
        await server.stop(stateDirectory: directory)
        #expect(!server.process.isRunning && !FileManager.default.fileExists(atPath: record.path))

        let orphan = try await ProviderServer.start(dataDirectory: directory.appendingPathComponent("data"), stateDirectory: directory, environment: environment)
        await ProviderServer.stopOrphan(stateDirectory: directory)
        #expect(!orphan.process.isRunning && !FileManager.default.fileExists(atPath: record.path))
    }

    /// A lock-free `status --audit` beside a running `up` must not stop that run's terraform; what a
    /// killed run left is interrupted. A shell linked as `provision` starts a `terraform` (perl
    /// linked so, sleeping with SIGINT at its default: a shell's background job ignores it), as `up`
    /// does; then the shell is killed, as a SIGKILLed `up` would be.
    @Test func aTerraformWhoseProvisionStillRunsIsLeftAloneAndInterruptedOnceItIsOrphaned() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orphan-tf-\(UUID().uuidString)")
        let bin = directory.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Hard links, not copies (another test's fork may hold a fresh copy open for writing, and
        // running it then fails: "Text file busy"); /proc/PID/exe names the link.
        for (name, program) in [("provision", "/bin/sh"), ("terraform", "/usr/bin/perl")] {
            let source = URL(fileURLWithPath: program).resolvingSymlinksInPath(), link = bin.appendingPathComponent(name)
            do { try FileManager.default.linkItem(at: source, to: link) } catch { try FileManager.default.copyItem(at: source, to: link) }
        }
        let runner = TerraformRunner(moduleSource: URL(fileURLWithPath: "/m"), stateDirectory: directory, variables: [:], providerOverride: nil, environment: [:])
        let provision = try DetachedProcess.launch(bin.appendingPathComponent("provision").path,
                                                   ["-c", "\"$0\" -e '$SIG{INT} = q(DEFAULT); sleep 600' & echo $! > \"$1\"; wait", bin.appendingPathComponent("terraform").path, runner.pidFile.path],
                                                   environment: ProcessInfo.processInfo.environment, logFile: directory.appendingPathComponent("log").path)
        defer { kill(provision.pid, SIGKILL) }
        // Its premise, not a timing: a full test run's first minutes have kept a child from starting for over 30 s.
        let deadline = ContinuousClock.now + .seconds(120)
        while (try? String(contentsOf: runner.pidFile, encoding: .utf8))?.hasSuffix("\n") != true && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let recorded = (try? String(contentsOf: runner.pidFile, encoding: .utf8)) ?? ""
        let output = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        let pid = try #require(Int32(recorded.trimmingCharacters(in: .whitespacesAndNewlines)),
                               "no terraform started (shell running: \(provision.isRunning), its output: \(output))")
        let terraform = DetachedProcess(pid: pid, processStart: LockHolder.processStart(pid))
        defer { kill(pid, SIGKILL) }
        let context = StepContext(runID: 1, stepID: "terraform.apply", attempt: 1, upstream: [:], item: nil, stateDirectory: directory,
                                  log: StepLog(path: directory.appendingPathComponent("step.log"), redactor: Redactor()), redactor: Redactor(),
                                  processes: ProcessSupervisor(), store: try SQLiteRunStore(directory: directory))

        try await runner.interruptOrphan(context)
        #expect(terraform.isRunning && FileManager.default.fileExists(atPath: runner.pidFile.path), "its provision runs: not an orphan")

        await provision.stop(grace: .zero)
        try await runner.interruptOrphan(context)
        #expect(!terraform.isRunning && !FileManager.default.fileExists(atPath: runner.pidFile.path), "orphaned: interrupted")
    }
}
