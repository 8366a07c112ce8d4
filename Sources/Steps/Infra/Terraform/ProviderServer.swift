import Engine
import Foundation
import JSON

#if canImport(Glibc)
import Glibc
#endif

/// One AWS provider process that serves every terraform command of a step, through terraform's
/// reattach protocol (`TF_REATTACH_PROVIDERS`, the way terraform-plugin-testing runs providers).
///
/// Left to itself, terraform starts the provider anew for each phase of each command (an `apply`
/// starts it four times, a `destroy` five: strace of one each), and each start of the AWS provider
/// loads a 700 MB binary before its first call. One server started once per step saves those
/// starts: ~1.2 s of CPU per apply and ~3 s of a sandbox apply's wall time (BENCHMARKS.md).
/// The sandbox uses it; the aws target keeps terraform's own launches, where a custom CA bundle
/// (`AWS_CA_BUNDLE`) cannot be configured twice in one provider process and credentials may be
/// refreshed per process.
///
/// The server is recorded in `state/<plan>/terraform-provider.json`: one left running by a
/// `provision` that was killed is stopped by the next run's `TerraformRunner.interruptOrphan`,
/// after the orphaned terraform it served has saved its state.
struct ProviderServer: Sendable {
    /// The running provider.
    let process: DetachedProcess
    /// `TF_REATTACH_PROVIDERS`'s value: the provider's address and protocol.
    let reattach: String

    /// The provider's logging, off: in debug mode it would log every request at debug level.
    static let quiet = [
        "TF_LOG": "OFF", "TF_LOG_PROVIDER": "ERROR", "TF_LOG_PROVIDER_AWS": "ERROR", "TF_LOG_AWS_SDK": "ERROR", "TF_LOG_SDK": "OFF",
    ]

    static func recordFile(_ stateDirectory: URL) -> URL {
        stateDirectory.appendingPathComponent("terraform-provider.json")
    }

    /// Starts the AWS provider that `init` installed under `dataDirectory`, in debug mode, and
    /// waits (up to `timeout`) for the reattach line it prints.
    static func start(dataDirectory: URL, stateDirectory: URL, environment: [String: String], timeout: Duration = .seconds(120)) async throws -> ProviderServer {
        let binary = try providerBinary(in: dataDirectory)
        let logFile = stateDirectory.appendingPathComponent("terraform-provider.log").path
        try? FileManager.default.removeItem(atPath: logFile)
        var env = environment.merging(quiet) { $1 }
        // Configured once per command in one process, a custom CA bundle fails the second time
        // ("unable to add custom RootCAs HTTPClient"); the sandbox's EC2 API is plain HTTP.
        env["AWS_CA_BUNDLE"] = nil
        let process = try DetachedProcess.launch(binary, ["-debug"], environment: env, logFile: logFile, workingDirectory: stateDirectory.path)
        try JSONEncoder().encode(process).write(to: recordFile(stateDirectory), options: .atomic)
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            if let reattach = reattachConfiguration(in: text) { return ProviderServer(process: process, reattach: reattach) }
            guard process.isRunning, ContinuousClock.now < deadline else {
                await process.stop(grace: .zero)
                try? FileManager.default.removeItem(at: recordFile(stateDirectory))
                let tail = text.split(separator: "\n").suffix(3).joined(separator: " | ")
                throw StepFailure("the AWS provider (\(binary)) did not start serving within \(timeout.formatted): \(tail.isEmpty ? "no output" : tail) (log: \(logFile))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops the server and forgets it.
    func stop(stateDirectory: URL) async {
        await process.stop()
        try? FileManager.default.removeItem(at: Self.recordFile(stateDirectory))
    }

    /// Stops a server a killed `provision` left running, if any (not one a live run serves).
    static func stopOrphan(stateDirectory: URL) async {
        guard let data = try? Data(contentsOf: recordFile(stateDirectory)),
              let process = try? JSONDecoder().decode(DetachedProcess.self, from: data) else { return }
        if process.isRunning && !process.isOrphaned { return }
        await process.stop()
        try? FileManager.default.removeItem(at: recordFile(stateDirectory))
    }

    /// The JSON of the `TF_REATTACH_PROVIDERS='…'` line the provider prints once it serves,
    /// when it names a provider and its address.
    static func reattachConfiguration(in output: String) -> String? {
        guard let start = output.range(of: "TF_REATTACH_PROVIDERS='") else { return nil }
        let rest = output[start.upperBound...]
        guard let end = rest.firstIndex(of: "'") else { return nil }
        let json = String(rest[..<end])
        guard case .object(let providers)? = try? JSONValue.parse(json), providers.values.contains(where: { $0["Addr"] != nil }) else { return nil }
        return json
    }

    /// `providers/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/terraform-provider-aws_*`.
    static func providerBinary(in dataDirectory: URL) throws -> String {
        let root = dataDirectory.appendingPathComponent("providers/registry.terraform.io/hashicorp/aws")
        let files = FileManager.default
        for version in ((try? files.contentsOfDirectory(atPath: root.path)) ?? []).sorted().reversed() {
            let versionDirectory = root.appendingPathComponent(version)
            for platform in (try? files.contentsOfDirectory(atPath: versionDirectory.path)) ?? [] {
                let directory = versionDirectory.appendingPathComponent(platform)
                for name in (try? files.contentsOfDirectory(atPath: directory.path)) ?? [] where name.hasPrefix("terraform-provider-aws") {
                    let path = directory.appendingPathComponent(name).path
                    if files.isExecutableFile(atPath: path) { return path }
                }
            }
        }
        throw StepFailure("no AWS provider under \(root.path); terraform init installs it (run 'provision up' again)")
    }
}
