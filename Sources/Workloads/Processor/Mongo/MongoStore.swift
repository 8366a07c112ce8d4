import CMongoc
import Foundation
import JSON

/// Owns one libmongoc client (not thread-safe: one per thread). Writes batches with unordered bulk
/// inserts whose `_id` is deterministic, so a redelivered record is a duplicate-key no-op.
final class MongoStore: @unchecked Sendable {  // each instance is used by one thread only
    private let client: OpaquePointer
    let database: String

    static let initialize: Void = { mongoc_init() }()

    init(uri: String, database: String) throws {
        _ = Self.initialize
        guard let client = mongoc_client_new(uri) else { throw MongoError("invalid MongoDB URI '\(uri)'; write mongodb://host:port") }
        self.client = client
        self.database = database
    }

    deinit { mongoc_client_destroy(client) }

    /// What a bulk insert did: documents newly inserted, and those the database refused for
    /// their content (by index into the documents given, with the database's reason).
    struct InsertOutcome {
        var inserted = 0
        var refused: [(index: Int, reason: String)] = []
    }

    /// Inserts documents (each with its `_id`) into `collection`. Duplicate keys are ignored (a
    /// redelivery). A document the database refuses for itself (a write error that is not
    /// transient, or one libmongoc refuses before sending, such as one over the size limit) is
    /// reported in the outcome and the others are still written. Throws only when the database
    /// cannot be used (connection, server selection, timeouts, not primary): then nothing may be
    /// committed and the caller retries the whole batch.
    func insert(_ documents: [(id: String, document: BSONDocument)], into collection: String) throws -> InsertOutcome {
        guard !documents.isEmpty else { return InsertOutcome() }
        return try insert(documents[...], into: collection)
    }

    private func insert(_ documents: ArraySlice<(id: String, document: BSONDocument)>, into collection: String) throws -> InsertOutcome {
        let outcome = try unorderedBulk(collection) { bulk, error in
            for document in documents {
                guard mongoc_bulk_operation_insert_with_opts(bulk, document.document.handle, nil, &error) else {
                    throw MongoError("cannot queue \(document.id): \(Self.message(&error))")
                }
            }
        }
        var result = InsertOutcome(inserted: outcome.reply["nInserted"]?.int ?? 0)
        if outcome.succeeded { return result }
        let writeErrors = outcome.reply["writeErrors"]?.array ?? []
        let concernErrors = outcome.reply["writeConcernErrors"]?.array ?? []
        if !writeErrors.isEmpty && concernErrors.isEmpty {
            for writeError in writeErrors {
                let code = writeError["code"]?.int ?? -1
                if code == 11000 { continue }  // already stored by an earlier delivery
                guard !Self.transientCodes.contains(code), let index = writeError["index"]?.int, documents.indices.contains(documents.startIndex + index) else {
                    throw MongoError("bulk insert into \(collection) failed: \(writeError["errmsg"]?.string ?? outcome.message)")
                }
                result.refused.append((documents.startIndex + index, "refused by the database (code \(code)): \(writeError["errmsg"]?.string ?? "no message")"))
            }
            return result
        }
        guard outcome.refusedBeforeSending else { throw MongoError("bulk insert into \(collection) failed: \(outcome.message)") }
        // libmongoc refused the bulk without saying which document: halve until it is one.
        guard documents.count > 1 else {
            return InsertOutcome(refused: [(documents.startIndex, "refused by the database client: \(outcome.message)")])
        }
        let middle = documents.startIndex + documents.count / 2
        let first = try insert(documents[..<middle], into: collection)
        let second = try insert(documents[middle...], into: collection)
        return InsertOutcome(inserted: first.inserted + second.inserted, refused: first.refused + second.refused)
    }

    /// Server error codes that say the server cannot write now, not that a document is wrong:
    /// host and network errors, shutdowns, elections, timeouts.
    static let transientCodes: Set<Int> = [6, 7, 50, 63, 89, 91, 134, 150, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436]

    /// One unordered bulk write on `collection`: `queue` adds the operations, then it runs.
    private func unorderedBulk(
        _ collection: String, queue: (OpaquePointer?, inout bson_error_t) throws -> Void
    ) throws -> (succeeded: Bool, reply: JSONValue, message: String, refusedBeforeSending: Bool) {
        let coll = mongoc_client_get_collection(client, database, collection)
        defer { mongoc_collection_destroy(coll) }
        let opts = bson_new()
        defer { bson_destroy(opts) }
        bson_append_bool(opts, "ordered", -1, false)
        let bulk = mongoc_collection_create_bulk_operation_with_opts(coll, opts)
        defer { mongoc_bulk_operation_destroy(bulk) }
        var error = bson_error_t()
        try queue(bulk, &error)
        let reply = Self.allocate()
        defer { bson_destroy(reply); UnsafeMutableRawPointer(reply).deallocate() }
        let succeeded = mongoc_bulk_operation_execute(bulk, reply, &error) != 0
        // Checks libmongoc makes on a document before sending it (size, keys): about the document.
        let beforeSending = error.domain == MONGOC_ERROR_BSON.rawValue
            || (error.domain == MONGOC_ERROR_COMMAND.rawValue && error.code == MONGOC_ERROR_COMMAND_INVALID_ARG.rawValue)
        return (succeeded, Self.json(reply), Self.message(&error), !succeeded && beforeSending)
    }

    // MARK: Rollups

    /// The mark of each existing rollup document among `ids`: `through_offset`, and
    /// `through_topic_id` (nil when the document has none).
    func marks(_ ids: [String], in collection: String) throws -> [String: (offset: Int64, topicID: String?)] {
        let coll = mongoc_client_get_collection(client, database, collection)
        defer { mongoc_collection_destroy(coll) }
        var error = bson_error_t()
        let query = try JSONSerialization.data(withJSONObject: ["_id": ["$in": ids]])
        let filter = try Self.bson(String(decoding: query, as: UTF8.self))
        defer { bson_destroy(filter) }
        let cursor = mongoc_collection_find_with_opts(coll, filter, nil, nil)
        defer { mongoc_cursor_destroy(cursor) }
        var marks: [String: (offset: Int64, topicID: String?)] = [:]
        var document: OpaquePointer?
        while mongoc_cursor_next(cursor, &document), let document {
            guard let id = BSONDocument.string("_id", in: document),
                  let mark = BSONDocument.withIterator("through_offset", in: document, { bson_iter_as_int64($0) }) else { continue }
            marks[id] = (mark, BSONDocument.string("through_topic_id", in: document))
        }
        if mongoc_cursor_error(cursor, &error) { throw MongoError("reading \(collection) failed: \(Self.message(&error))") }
        return marks
    }

    /// Inserts new rollup documents and applies conditional updates (filter: `_id` and the
    /// expected mark) in one unordered bulk write. Throws if any update matched nothing or any
    /// insert met an existing `_id`: another writer moved a mark, and the caller reads again.
    func writeRollups(inserts: [String], updates: [(filter: String, update: String)], in collection: String) throws {
        guard !inserts.isEmpty || !updates.isEmpty else { return }
        let outcome = try unorderedBulk(collection) { bulk, error in
            for json in inserts {
                let document = try Self.bson(json)
                defer { bson_destroy(document) }
                guard mongoc_bulk_operation_insert_with_opts(bulk, document, nil, &error) else { throw MongoError("cannot queue a rollup: \(Self.message(&error))") }
            }
            for (filterJSON, updateJSON) in updates {
                let filter = try Self.bson(filterJSON)
                defer { bson_destroy(filter) }
                let update = try Self.bson(updateJSON)
                defer { bson_destroy(update) }
                guard mongoc_bulk_operation_update_one_with_opts(bulk, filter, update, nil, &error) else {
                    throw MongoError("cannot queue a rollup update: \(Self.message(&error))")
                }
            }
        }
        guard outcome.succeeded else {
            throw MongoError("writing rollups in \(collection) failed (\(outcome.message)); they will be read again")
        }
        let matched = outcome.reply["nMatched"]?.int ?? 0, inserted = outcome.reply["nInserted"]?.int ?? 0
        guard matched == updates.count, inserted == inserts.count else {
            throw MongoError("rollups in \(collection) moved meanwhile (\(matched) of \(updates.count) updates found their mark, "
                             + "\(inserted) of \(inserts.count) new buckets inserted); they will be read again")
        }
    }

    private static func bson(_ json: String) throws -> OpaquePointer {
        var error = bson_error_t()
        let bytes = Array(json.utf8)
        guard let document = bytes.withUnsafeBufferPointer({ bson_new_from_json($0.baseAddress, $0.count, &error) }) else {
            throw MongoError("invalid document: \(message(&error))")
        }
        return document
    }

    /// Creates an index if missing (idempotent).
    func ensureIndex(_ collection: String, keys: [String], expireAfterSeconds: Int? = nil) throws {
        let keyDoc = bson_new()
        defer { bson_destroy(keyDoc) }
        for key in keys { bson_append_int32(keyDoc, key, -1, 1) }
        let index = bson_new()
        defer { bson_destroy(index) }
        bson_append_document(index, "key", -1, keyDoc)
        bson_append_utf8(index, "name", -1, keys.joined(separator: "_") + "_idx", -1)
        if let expireAfterSeconds { bson_append_int32(index, "expireAfterSeconds", -1, Int32(expireAfterSeconds)) }
        let indexes = bson_new()
        defer { bson_destroy(indexes) }
        bson_append_document(indexes, "0", -1, index)  // a BSON array is a document keyed "0", "1", ...
        let command = bson_new()
        defer { bson_destroy(command) }
        bson_append_utf8(command, "createIndexes", -1, collection, -1)
        bson_append_array(command, "indexes", -1, indexes)
        try run(command, what: "createIndexes on \(collection)")
    }

    /// Number of documents in `collection`.
    func count(_ collection: String) throws -> Int {
        let coll = mongoc_client_get_collection(client, database, collection)
        defer { mongoc_collection_destroy(coll) }
        let filter = bson_new()
        defer { bson_destroy(filter) }
        var error = bson_error_t()
        let n = mongoc_collection_count_documents(coll, filter, nil, nil, nil, &error)
        guard n >= 0 else { throw MongoError("count of \(collection) failed: \(Self.message(&error))") }
        return Int(n)
    }

    /// Whether the server answers `ping`.
    func ping() -> Bool {
        let command = bson_new()
        defer { bson_destroy(command) }
        bson_append_int32(command, "ping", -1, 1)
        return (try? run(command, what: "ping")) != nil
    }

    private func run(_ command: OpaquePointer?, what: String) throws {
        let reply = Self.allocate()
        defer { bson_destroy(reply); UnsafeMutableRawPointer(reply).deallocate() }
        var error = bson_error_t()
        guard mongoc_client_command_simple(client, database, command, nil, reply, &error) else {
            throw MongoError("\(what) failed: \(Self.message(&error))")
        }
    }

    /// A `bson_t` for libmongoc to initialise, with the alignment libbson declares.
    private static func allocate() -> OpaquePointer {
        OpaquePointer(UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<bson_t>.size, alignment: 128))
    }

    private static func json(_ doc: OpaquePointer) -> JSONValue {
        var length = 0
        guard let text = bson_as_relaxed_extended_json(doc, &length) else { return [:] }
        defer { bson_free(text) }
        return (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes: text, count: length))) ?? [:]
    }

    private static func message(_ error: inout bson_error_t) -> String {
        withUnsafeBytes(of: &error.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// A MongoDB failure with what to do about it.
struct MongoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
