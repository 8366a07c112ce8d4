import Flows
import Foundation
import Infra
import Testing
@testable import Transport

/// The Layout section (docs/architecture.md, moved there from the README) and docs/architecture.md name
/// every source folder there is.
@Suite struct LayoutDocumentationTests {
    @Test func layoutAndArchitectureDocNameEverySourceFolder() throws {
        let architecture = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let layout = try #require(architecture.components(separatedBy: "## Layout").dropFirst().first?.components(separatedBy: "\n## ").first)
        for module in ["Engine", "Steps", "Provision"] + Self.stepsLayers.map { "Steps/\(Self.folder(of: $0))" } {
            let root = repositoryRoot.appendingPathComponent("Sources/\(module)")
            let folders = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { name in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory) && isDirectory.boolValue
            }
            #expect(!folders.isEmpty || module.hasPrefix("Steps/"), "Sources/\(module) has no folders")
            for folder in folders {
                #expect(layout.contains("\(folder)/"), "docs/architecture.md Layout does not name Sources/\(module)/\(folder)/")
                if module.hasPrefix("Steps") {
                    #expect(architecture.contains(folder), "docs/architecture.md does not name \(module)/\(folder)")
                }
            }
        }
        for mentioned in ["Flow", "ClusterInventory", "CommandRunner", "mermaid"] {
            #expect(architecture.contains(mentioned))
        }
    }

    /// A target as Package.swift declares it.
    struct Target {
        var dependencies: Set<String>
        /// Its folder from the repository root.
        var path: String
        /// Folders under `path` that are not its sources.
        var excluded: [String]
    }

    /// Every target of Package.swift (products by their name; a target's folder as SwiftPM finds it).
    static func packageTargets() throws -> [String: Target] {
        let package = try String(contentsOf: repositoryRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        var targets: [String: Target] = [:]
        let starts = package.ranges(of: #/\.(target|executableTarget|testTarget)\(/#)
        for (index, start) in starts.enumerated() {
            let end = index + 1 < starts.count ? starts[index + 1].lowerBound : package.endIndex
            let text = String(package[start.lowerBound..<end])
            guard let name = text.firstMatch(of: #/name: "(\w+)"/#)?.1 else { continue }
            let list = text.firstMatch(of: #/dependencies: \[([^\]]*)\]/#).map { String($0.1) } ?? ""
            let products = list.matches(of: #/\.product\(name: "(\w+)"/#).map { String($0.1) }
            let plain = list.replacing(#/\.product\([^)]*\)/#, with: "").matches(of: #/"(\w+)"/#).map { String($0.1) }
            let path = text.firstMatch(of: #/path: "([^"]+)"/#).map { String($0.1) }
                ?? (text.hasPrefix(".testTarget") ? "Tests/\(name)" : "Sources/\(name)")
            let excluded = text.firstMatch(of: #/exclude: \[([^\]]*)\]/#).map { $0.1.matches(of: #/"([^"]+)"/#).map { String($0.1) } } ?? []
            targets[String(name)] = Target(dependencies: Set(products + plain), path: path, excluded: excluded)
        }
        return targets
    }

    /// Steps' layers from the bottom: each may depend only on those before it.
    static let stepsLayers = ["Transport", "PlanLanguage", "Infra", "NodeRuntime", "Kube", "Verification", "Flows", "App"]

    /// A layer's folder under Sources/Steps.
    static func folder(of layer: String) -> String {
        ["PlanLanguage": "Plan", "App": "Workspace"][layer] ?? layer
    }

    static func packageDependencies() throws -> [String: Set<String>] {
        try packageTargets().mapValues(\.dependencies)
    }

    /// The layers are targets: a file may import only the targets its own depends on (SwiftPM
    /// would let it import another one that happens to be built first).
    @Test func everyFileImportsOnlyTargetsItsOwnTargetDependsOn() throws {
        let targets = try Self.packageTargets()
        #expect(targets["Transport"]?.path == "Sources/Steps/Transport" && targets["App"]?.dependencies.contains("Transport") == true,
                "Steps' layers are targets: \(targets.keys.sorted())")
        var files = 0
        for (name, target) in targets {
            let root = repositoryRoot.appendingPathComponent(target.path)
            let paths = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String }
                .filter { $0.hasSuffix(".swift") && !target.excluded.contains(where: $0.hasPrefix) } ?? []
            for path in paths {
                let text = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
                files += 1
                for line in text.split(separator: "\n") {
                    guard let imported = line.firstMatch(of: #/^(?:@testable |@_exported )?import (\w+)/#)?.1.description,
                          targets[imported] != nil, imported != name else { continue }
                    #expect(target.dependencies.contains(imported),
                            "\(target.path)/\(path) imports \(imported), which target \(name) does not depend on (a layer may import only those below it)")
                }
            }
        }
        #expect(files > 300, "\(files) files read")
    }

    @Test func theModulesTableSaysWhatPackageSwiftDeclares() throws {
        let targets = try Self.packageDependencies()
        #expect(targets["App"]?.contains("Engine") == true, "Package.swift must be read: \(targets.keys.sorted())")
        let architecture = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        var checked: [String] = []
        for match in architecture.matches(of: #/(?m)^\| `(\w+)` \(Sources/[\w/]+\) \| ([^|]*) \|/#) {
            let module = String(match.1)
            let written = match.2.trimmingCharacters(in: .whitespaces)
            let documented = written == "nothing" ? Set<String>() : Set(written.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let declared = try #require(targets[module], "docs/architecture.md names a module \(module) that Package.swift does not declare")
            #expect(documented == declared, "docs/architecture.md says \(module) depends on \(documented.sorted()); Package.swift says \(declared.sorted())")
            checked.append(module)
        }
        #expect(Set(checked).isSuperset(of: ["Engine", "Provision", "Bench", "Digest", "JSON"] + Self.stepsLayers), "rows checked: \(checked)")
    }

    /// Every folder of Sources/Steps is a layer's target, and a layer depends on no layer above it.
    @Test func stepsLayersAreTargetsThatDependOnlyOnLayersBelowThem() throws {
        let targets = try Self.packageTargets()
        let folders = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Sources/Steps").path)
        #expect(Set(folders) == Set(Self.stepsLayers.map(Self.folder(of:))), "Sources/Steps holds \(folders.sorted()); each folder must be one layer's target")
        for layer in Self.stepsLayers {
            let target = try #require(targets[layer], "Package.swift declares no target \(layer)")
            #expect(target.path == "Sources/Steps/\(Self.folder(of: layer))")
            let above = Self.dependenciesAbove(layer, target.dependencies)
            #expect(above.isEmpty, "\(layer) depends on \(above.sorted()), which are not below it (order: \(Self.stepsLayers))")
        }
        #expect(Self.dependenciesAbove("Infra", ["Engine", "Transport", "Kube"]) == ["Kube"], "the rule catches a layer that depends on one above it")
    }

    /// Those of `dependencies` that are `layer` itself or a layer above it.
    static func dependenciesAbove(_ layer: String, _ dependencies: Set<String>) -> Set<String> {
        guard let index = stepsLayers.firstIndex(of: layer) else { return [] }
        return dependencies.intersection(stepsLayers.dropFirst(index))
    }

    /// docs/architecture.md's layer diagram draws Package.swift's layers: each layer's dependencies on
    /// other layers, less those another drawn arrow implies (the transitive reduction).
    @Test func theLayerDiagramIsPackageSwiftsLayers() throws {
        let targets = try Self.packageDependencies()
        let layers = Set(Self.stepsLayers)
        var direct: [String: Set<String>] = [:]
        for layer in Self.stepsLayers { direct[layer] = (targets[layer] ?? []).intersection(layers) }
        func reaches(_ from: String, _ to: String, skipping edge: (String, String)) -> Bool {
            var seen: Set<String> = []
            var queue = [from]
            while let next = queue.popLast() {
                for dependency in direct[next] ?? [] where (next, dependency) != edge && seen.insert(dependency).inserted {
                    if dependency == to { return true }
                    queue.append(dependency)
                }
            }
            return false
        }
        var expected: Set<String> = []
        for (layer, dependencies) in direct {
            for dependency in dependencies where !reaches(layer, dependency, skipping: (layer, dependency)) {
                expected.insert("\(layer) --> \(dependency)")
            }
        }
        let architecture = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let diagram = try #require(architecture.firstMatch(of: #/```mermaid\nflowchart BT\n([^`]*)```/#)?.1, "docs/architecture.md has no layer diagram")
        let drawn = Set(diagram.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        #expect(expected.count >= Self.stepsLayers.count - 1, "every layer but the lowest depends on another: \(expected.sorted())")
        #expect(drawn == expected, "docs/architecture.md's layer diagram draws \(drawn.sorted()); Package.swift's layers are \(expected.sorted())")
    }
}
