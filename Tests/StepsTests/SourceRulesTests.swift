import Foundation
import Kube
import Testing
@testable import Transport

/// Rules of the source tree the compiler cannot enforce (issue 20): no untyped JSON, one typed
/// Kubernetes client that alone builds kubectl command lines, no child process started outside the
/// engine's supervisor, one as-root wrapper.
@Suite struct SourceRulesTests {
    /// Each Swift file under Sources, by its path from the repository root, with all its lines.
    static func sourceFiles() throws -> [(path: String, lines: [String])] {
        let sources = repositoryRoot.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        #expect(files.count > 100, "Sources must be found (\(files.count) Swift files)")
        return try files.sorted().map { file in
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            return ("Sources/" + file, text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        }
    }

    /// Each Swift file under Sources, by its path from the repository root, with its lines outside comments.
    static func sourceLines() throws -> [(path: String, lines: [String])] {
        try sourceFiles().map { file in (file.path, file.lines.filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }) }
    }

    /// Lines that build a kubectl command line: a string that starts with one (not a hint in quotes
    /// inside a message), or kubectl started as a program.
    static func kubectlCommandLines(_ lines: [String]) -> [String] {
        let pattern = #/"(flock [^"]*)?(k3s )?kubectl |ProcessCommand\("kubectl"/#
        return lines.filter { $0.contains(pattern) }
    }

    @Test func noUntypedJSONDictionaryIsLeftInSources() throws {
        for (path, lines) in try Self.sourceLines() {
            let found = lines.filter { $0.contains("[String: Any]") }
            #expect(found.isEmpty, "\(path) uses [String: Any]; use JSONValue (target JSON) or a Decodable model: \(found)")
        }
    }

    @Test func onlyTheTypedKubernetesClientBuildsKubectlCommandLines() throws {
        // The rule itself catches what it is for.
        #expect(Self.kubectlCommandLines([#"try await node.run("k3s kubectl get pods -o json")"#, #"let drain = "flock \(lock) k3s kubectl drain""#,
                                          #"ProcessCommand("kubectl", ["kustomize"])"#]).count == 3)
        #expect(Self.kubectlCommandLines([#"hint: "'k3s kubectl logs -n app deploy/processor' on \(control)""#, "control.kube().get([\"pods\"])"]).isEmpty)
        var clientFiles: [String] = []
        for (path, lines) in try Self.sourceLines() {
            let found = Self.kubectlCommandLines(lines)
            if path == "Sources/Steps/Kube/Client/Kubectl.swift" {
                if !found.isEmpty { clientFiles.append(path) }
                continue
            }
            #expect(found.isEmpty, "\(path) builds a kubectl command line; add a method to Kubectl (Sources/Steps/Kube/Client/Kubectl.swift): \(found)")
        }
        #expect(clientFiles == ["Sources/Steps/Kube/Client/Kubectl.swift"], "the typed client is where kubectl command lines are built")
    }

    /// `grep -rn kubectl Sources` finds only the typed client's folder: other code calls the client
    /// (`node.kube()`), and hints name a command through `Kubectl.shown`, comments and help included.
    @Test func kubectlIsSpelledOnlyInTheTypedClientsFolder() throws {
        let client = "Sources/Steps/Kube/Client/"
        var inClient = 0
        for (path, lines) in try Self.sourceFiles() {
            let spelled = lines.filter { $0.contains("kubectl") }
            if path.hasPrefix(client) { inClient += spelled.count; continue }
            #expect(spelled.isEmpty, "\(path) spells kubectl; call the typed client (\(client)) or name the command with Kubectl.shown: \(spelled)")
        }
        #expect(inClient > 0, "the typed client in \(client) builds the kubectl command lines")
    }

    @Test func childProcessesStartOnlyInTheEnginesSupervisor() throws {
        for (path, lines) in try Self.sourceLines() where !path.hasPrefix("Sources/Engine/") {
            let found = lines.filter { $0.contains("Process()") || $0.contains("posix_spawn") }
            #expect(found.isEmpty, "\(path) starts a process outside Engine's ProcessSupervisor; run it through a CommandRunner: \(found)")
        }
    }

    @Test func commandsRunAsRootThroughOneWrapper() throws {
        for (path, lines) in try Self.sourceLines() where path != "Sources/Steps/Transport/Command/Shell.swift" {
            let found = lines.filter { $0.contains("sudo ") }
            #expect(found.isEmpty, "\(path) runs sudo itself; use Shell.asRoot: \(found)")
        }
    }
}
