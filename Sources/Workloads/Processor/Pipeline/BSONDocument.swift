import CMongoc
import Foundation

/// One libbson document, parsed once from a record's JSON and owned until it is written.
final class BSONDocument: @unchecked Sendable {  // moved from the polling thread to the writer, never shared
    let handle: OpaquePointer

    /// Parses JSON text; nil when it is not valid JSON.
    init?(json bytes: [UInt8]) {
        var error = bson_error_t()
        guard let handle = bytes.withUnsafeBufferPointer({ bson_new_from_json($0.baseAddress, $0.count, &error) }) else { return nil }
        self.handle = handle
    }

    deinit { bson_destroy(handle) }

    /// The BSON type of a top-level field, or nil when it is missing.
    func type(of key: String) -> bson_type_t? {
        withIterator(key) { bson_iter_type($0) }
    }

    /// A top-level string field.
    func string(_ key: String) -> String? { Self.string(key, in: handle) }

    /// A top-level string field of a document this type does not own (a cursor's, say).
    static func string(_ key: String, in document: OpaquePointer) -> String? {
        withIterator(key, in: document) { iterator in
            bson_iter_type(iterator) == BSON_TYPE_UTF8 ? bson_iter_utf8(iterator, nil).map { String(cString: $0) } : nil
        } ?? nil
    }

    /// A top-level number field (double, int32 or int64) as a Double.
    func number(_ key: String) -> Double? {
        withIterator(key) { iterator -> Double? in
            switch bson_iter_type(iterator) {
            case BSON_TYPE_DOUBLE: return bson_iter_double(iterator)
            case BSON_TYPE_INT32, BSON_TYPE_INT64: return Double(bson_iter_as_int64(iterator))
            default: return nil
            }
        } ?? nil
    }

    /// A top-level integer field (int32 or int64), exactly; nil for any other type.
    func integer(_ key: String) -> Int64? {
        withIterator(key) { iterator -> Int64? in
            [BSON_TYPE_INT32, BSON_TYPE_INT64].contains(bson_iter_type(iterator)) ? bson_iter_as_int64(iterator) : nil
        } ?? nil
    }

    /// Appends an integer as int32 when it fits and as int64 otherwise, as libbson's JSON parser
    /// stores the payload's own numbers: a server decodes the smaller type faster (nx-27017 spends
    /// ~7 % more per document when an offset that fits in 32 bits arrives as int64).
    func append(_ key: String, integer value: Int64) {
        if let small = Int32(exactly: value) { bson_append_int32(handle, key, -1, small) } else { bson_append_int64(handle, key, -1, value) }
    }
    func append(_ key: String, int32 value: Int32) { bson_append_int32(handle, key, -1, value) }
    func append(_ key: String, string value: String) { bson_append_utf8(handle, key, -1, value, -1) }
    func append(_ key: String, dateMilliseconds value: Int64) { bson_append_date_time(handle, key, -1, value) }

    private func withIterator<T>(_ key: String, _ body: (OpaquePointer) -> T) -> T? {
        Self.withIterator(key, in: handle, body)
    }

    /// Runs `body` on an iterator at `key` of `document`; nil when the field is missing.
    /// bson_iter_t imports as opaque (it is over-aligned), so it gets raw storage of ample size.
    static func withIterator<T>(_ key: String, in document: OpaquePointer, _ body: (OpaquePointer) -> T) -> T? {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 128)
        defer { storage.deallocate() }
        let iterator = OpaquePointer(storage)
        guard bson_iter_init_find(iterator, document, key) else { return nil }
        return body(iterator)
    }
}
