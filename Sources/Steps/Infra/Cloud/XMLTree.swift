import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML document as a plain tree: enough to read EC2's query-API responses.
package final class XMLTree {
    let name: String
    var text = ""
    var children: [XMLTree] = []

    init(name: String) {
        self.name = name
    }

    /// Parses `data`; nil when it is not well-formed XML.
    static func parse(_ data: Data) -> XMLTree? {
        let builder = Builder()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        return parser.parse() ? builder.root : nil
    }

    /// The first child called `name`.
    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// The text of the child at `path` (`instanceState/name`).
    func value(_ path: String) -> String? {
        var node: XMLTree? = self
        for part in path.split(separator: "/") { node = node?.child(String(part)) }
        return node?.text
    }

    /// Every descendant called `name`, depth first.
    func all(_ name: String) -> [XMLTree] {
        children.flatMap { ($0.name == name ? [$0] : []) + $0.all(name) }
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var root: XMLTree?
        private var stack: [XMLTree] = []

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let node = XMLTree(name: elementName)
            stack.last?.children.append(node)
            if root == nil { root = node }
            stack.append(node)
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            if let node = stack.popLast() { node.text = node.text.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
    }
}
