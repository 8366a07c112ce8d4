import Foundation

/// The API's answer to a `get` as JSON: a `List` of items, or one object when one was asked for.
package struct KubeList<Item: Decodable & Sendable>: Decodable, Sendable {
    var items: [Item]

    private enum Keys: String, CodingKey { case kind, items }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        if try container.decodeIfPresent(String.self, forKey: .kind) == "List" || container.contains(.items) {
            items = try container.decodeIfPresent([Item].self, forKey: .items) ?? []
        } else {
            items = [try Item(from: decoder)]
        }
    }

    /// The items of `json`; nil when it is not such an answer.
    package static func decode(_ json: String) -> [Item]? {
        try? JSONDecoder().decode(Self.self, from: Data(json.utf8)).items
    }
}
