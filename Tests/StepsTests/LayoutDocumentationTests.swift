import Foundation
import Testing
@testable import Transport

/// The Layout section (docs/architecture.md, moved there from the README) and docs/architecture.md name
/// every source folder there is.
@Suite struct LayoutDocumentationTests {
    @Test func layoutAndArchitectureDocNameEverySourceFolder() throws {
        let architecture = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let layout = try #require(architecture.components(separatedBy: "## Layout").dropFirst().first?.components(separatedBy: "\n## ").first)
        for module in ["Engine", "Steps", "Provision"] {
            let root = repositoryRoot.appendingPathComponent("Sources/\(module)")
            let folders = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { name in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory) && isDirectory.boolValue
            }
            #expect(!folders.isEmpty)
            for folder in folders {
                #expect(layout.contains("\(folder)/"), "docs/architecture.md Layout does not name Sources/\(module)/\(folder)/")
                if module == "Steps" {
                    #expect(architecture.contains(folder), "docs/architecture.md does not name Steps/\(folder)")
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

    static func packageDependencies() throws -> [String: Set<String>] {
        try packageTargets().mapValues(\.dependencies)
    }

    /// The layers are targets: a file may import only the targets its own depends on (SwiftPM
    /// would let it import another one that happens to be built first).
    @Test func everyFileImportsOnlyTargetsItsOwnTargetDependsOn() throws {
        let targets = try Self.packageTargets()
        #expect(targets["Transport"]?.path == "Sources/Steps/Transport" && targets["Steps"]?.dependencies.contains("Transport") == true,
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
        #expect(targets["Steps"]?.contains("Engine") == true, "Package.swift must be read: \(targets.keys.sorted())")
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
        #expect(Set(checked).isSuperset(of: ["Engine", "Transport", "PlanLanguage", "Steps", "Provision", "Bench", "Digest", "JSON"]), "rows checked: \(checked)")
    }
}
