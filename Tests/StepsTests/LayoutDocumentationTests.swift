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
}
