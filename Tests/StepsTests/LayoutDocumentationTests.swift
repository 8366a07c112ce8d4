import Foundation
import Testing

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

    /// Each target's dependencies as Package.swift declares them (products by their name).
    static func packageDependencies() throws -> [String: Set<String>] {
        let package = try String(contentsOf: repositoryRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        var targets: [String: Set<String>] = [:]
        for match in package.matches(of: #/\.(?:target|executableTarget|testTarget)\(\s*name: "(\w+)"(?:,\s*dependencies: \[([^\]]*)\])?/#) {
            let list = match.2.map(String.init) ?? ""
            let products = list.matches(of: #/\.product\(name: "(\w+)"/#).map { String($0.1) }
            let plain = list.replacing(#/\.product\([^)]*\)/#, with: "").matches(of: #/"(\w+)"/#).map { String($0.1) }
            targets[String(match.1)] = Set(products + plain)
        }
        return targets
    }

    @Test func theModulesTableSaysWhatPackageSwiftDeclares() throws {
        let targets = try Self.packageDependencies()
        #expect(targets["Steps"]?.contains("Engine") == true, "Package.swift must be read: \(targets.keys.sorted())")
        let architecture = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        var checked: [String] = []
        for match in architecture.matches(of: #/(?m)^\| `(\w+)` \(Sources/\w+\) \| ([^|]*) \|/#) {
            let module = String(match.1)
            let written = match.2.trimmingCharacters(in: .whitespaces)
            let documented = written == "nothing" ? Set<String>() : Set(written.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let declared = try #require(targets[module], "docs/architecture.md names a module \(module) that Package.swift does not declare")
            #expect(documented == declared, "docs/architecture.md says \(module) depends on \(documented.sorted()); Package.swift says \(declared.sorted())")
            checked.append(module)
        }
        #expect(Set(checked).isSuperset(of: ["Engine", "Steps", "Provision", "Bench", "Digest", "JSON"]), "rows checked: \(checked)")
    }
}
