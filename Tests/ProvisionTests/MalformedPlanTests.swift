import Foundation
import TestSupport
import Testing
@testable import PlanLanguage

/// Every malformed plan gets one screen of error with its location and exit code 2, never a crash.
@Suite struct MalformedPlanTests {
    static let valid = "name: p\nsteps:\n  - id: a\n    exec:\n      run: 'true'\n"

    /// (what is wrong, plan text, the line the error must point at or nil when the file has none,
    ///  a phrase the message must contain)
    static let cases: [(String, String, Int?, String)] = [
        ("unclosed flow list", "name: p\nsteps: [\n  - id: a\n", 3, "not valid YAML"),
        ("tab indentation", "name: p\nsteps:\n\t- id: a\n", 3, "not valid YAML"),
        ("steps is text", "name: p\nsteps: all of them\n", 2, "steps must be a non-empty list"),
        ("empty steps", "name: p\nsteps: []\n", 2, "non-empty list"),
        ("parallelism is not a number", "name: p\nparallelism: lots\n" + valid.dropFirst(8), 2, "whole number"),
        ("parallelism out of range", "name: p\nparallelism: 0\n" + valid.dropFirst(8), 2, "from 1 to 256"),
        ("unknown top-level key", "name: p\nstepz: []\nsteps:\n  - id: a\n    exec: {run: x}\n", 2, "did you mean 'steps'"),
        ("unknown step key", "name: p\nsteps:\n  - id: a\n    neds: [b]\n    exec: {run: x}\n", 4, "did you mean 'needs'"),
        ("unknown exec key", "name: p\nsteps:\n  - id: a\n    exec: {run: x, chekc: y}\n", 4, "did you mean 'check'"),
        ("missing exec", "name: p\nsteps:\n  - id: a\n", 3, "missing the required key 'exec'"),
        ("missing run", "name: p\nsteps:\n  - id: a\n    exec: {check: x}\n", 4, "missing the required key 'run'"),
        ("missing name", "steps:\n  - id: a\n    exec: {run: x}\n", 1, "missing the required key 'name'"),
        ("bad name", "name: My Plan\nsteps:\n  - id: a\n    exec: {run: x}\n", 1, "name 'My Plan' is not allowed"),
        ("bad step id", "name: p\nsteps:\n  - id: a/b\n    exec: {run: x}\n", 3, "reserved for fan-out"),
        ("duplicate step id", valid + "  - id: a\n    exec: {run: x}\n", 6, "already used on line 3"),
        ("unknown dependency", valid + "  - id: b\n    needs: [aa]\n    exec: {run: x}\n", 7, "did you mean 'a'"),
        ("self dependency", "name: p\nsteps:\n  - id: a\n    needs: [a]\n    exec: {run: x}\n", 4, "needs itself"),
        ("cycle", "name: p\nsteps:\n  - id: a\n    needs: b\n    exec: {run: x}\n  - id: b\n    needs: a\n    exec: {run: x}\n", 3, "cycle: a → b → a"),
        ("unknown target", "name: p\ntarget: sandbx\n" + valid.dropFirst(8), 2, "unknown target 'sandbx'"),
        ("undeclared secret", "name: p\nsteps:\n  - id: a\n    exec: {run: x, secrets: [tok]}\n", 4, "does not declare"),
        ("inline secret value", "name: p\nsecrets: {tok: {value: hunter2}}\n" + valid.dropFirst(8), 2, "unknown key 'value'"),
        ("bad duration", "name: p\nsteps:\n  - id: a\n    retry: {timeout: soon}\n    exec: {run: x}\n", 4, "like 500ms"),
        ("for_each unknown step", "name: p\nsteps:\n  - id: a\n    for_each: {step: nodes}\n    exec: {run: x}\n", 4, "for_each names step 'nodes'"),
        ("null run", "name: p\nsteps:\n  - id: a\n    exec:\n      run:\n", 5, "needs a value"),
        ("run is a list", "name: p\nsteps:\n  - id: a\n    exec:\n      run: [a, b]\n", 5, "must be text"),
        ("top level is a list", "- name: p\n", 1, "must be a mapping"),
        ("duplicate key", "name: p\nname: q\nsteps: []\n", 2, "appears twice"),
        ("empty file", "", nil, "the plan is empty"),
        ("only comments", "# nothing here\n", nil, "the plan is empty"),
        ("VPC overlaps the pod range", "name: p\ntarget: aws\ncluster:\n  ami: ami-1\n  allowed_cidrs: [203.0.113.7/32]\n  vpc_cidr: 10.52.0.0/16\n"
            + "k3s: {version: v1.37.1+k3s1, deploy: false}\n", 6,
         "k3s.cluster_cidr 10.52.0.0/16 (the default) overlaps cluster.vpc_cidr 10.52.0.0/16"),
        ("service range overlaps the VPC", "name: p\ntarget: aws\ncluster: {ami: ami-1, allowed_cidrs: [203.0.113.7/32]}\n"
            + "k3s:\n  version: v1.37.1+k3s1\n  deploy: false\n  service_cidr: 10.42.128.0/17\n", 7,
         "k3s.service_cidr 10.42.128.0/17 overlaps cluster.vpc_cidr 10.42.0.0/16 (the default; the VPC, whose node subnet is 10.42.0.0/24)"),
    ]

    @Test(arguments: 0..<cases.count)
    func malformedPlanGivesALocatedOneScreenErrorAndExitCode2(_ index: Int) async throws {
        let (what, text, line, phrase) = Self.cases[index]
        let cli = CLI()
        defer { cli.cleanUp() }
        let plan = cli.write("plan.yaml", text)
        let result = try await cli.run(["validate", "--plan", plan])
        #expect(!result.signaled, "\(what): crashed")
        #expect(result.code == 2, "\(what): exit \(result.code): \(result.stderr)")
        let location = line.map { "\(plan):\($0):" } ?? "\(plan): error:"
        #expect(result.stderr.hasPrefix("provision: \(location)"), "\(what): \(result.stderr)")
        #expect(result.stderr.contains(phrase), "\(what): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count <= 12, "\(what): more than one screen")
    }

    @Test func binaryGarbageIsRejectedAsNotText() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        let path = cli.directory.appendingPathComponent("garbage.yaml").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let result = try await cli.run(["up", "--plan", path])
        #expect(result.code == 2)
        #expect(result.stderr.contains("not UTF-8 text"))
        #expect(!FileManager.default.fileExists(atPath: cli.stateRoot), "nothing may be written for an invalid plan")
    }

    @Test func missingPlanFileSaysHowToPassOne() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["status", "--plan", "nope.yaml"])
        #expect(result.code == 2)
        #expect(result.stderr.contains("pass --plan"))
    }

    @Test func validPlanValidatesWithJSON() async throws {
        let cli = CLI()
        defer { cli.cleanUp() }
        let result = try await cli.run(["validate", "--json", "--plan", cli.write("plan.yaml", Self.valid)])
        #expect(result.code == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["valid"] as? Bool == true)
        #expect(object?["steps"] as? Int == 1)
    }
}
