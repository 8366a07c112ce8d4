import Foundation

/// Checks that a record's bytes are JSON the database will store exactly as validation read it:
/// RFC 8259 grammar, valid UTF-8, no duplicate key in any object (libbson keeps both copies and
/// readers disagree on which wins), finite numbers, integers inside 64 bits, bounded nesting.
/// One pass over the bytes, before libbson parses them; the problem names the byte where it is.
struct StrictJSON {
    /// Objects and arrays nested deeper than this are refused.
    static let maxDepth = 64

    /// Why the bytes are not acceptable, or nil when they are.
    static func problem(in bytes: [UInt8]) -> String? {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = StrictJSON(bytes: buffer)
            do {
                scanner.skipSpace()
                try scanner.value(depth: 0)
                scanner.skipSpace()
                guard scanner.at == buffer.count else { throw Problem("unexpected \(scanner.describe()) after the document", scanner.at) }
                return nil
            } catch let problem as Problem {
                return "\(problem.text) at byte \(problem.offset)"
            } catch {
                return "\(error)"
            }
        }
    }

    private struct Problem: Error {
        let text: String
        let offset: Int
        init(_ text: String, _ offset: Int) { self.text = text; self.offset = offset }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var at = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private var current: UInt8? { at < bytes.count ? bytes[at] : nil }

    private func describe() -> String {
        guard let byte = current else { return "end of input" }
        return (0x21...0x7e).contains(byte) ? "'\(Character(UnicodeScalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09 { at += 1 }
    }

    private mutating func value(depth: Int) throws {
        guard let byte = current else { throw Problem("not valid JSON: unexpected end of input", at) }
        switch byte {
        case UInt8(ascii: "{"): try object(depth: depth + 1)
        case UInt8(ascii: "["): try array(depth: depth + 1)
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            throw Problem("non-finite number \(word()) (JSON has no NaN or Infinity)", at)
        default:
            throw Problem("not valid JSON: unexpected \(describe())", at)
        }
    }

    /// The run of letters at the cursor (for messages).
    private func word() -> String {
        var end = at
        while end < bytes.count, end - at < 16, (0x41...0x7a).contains(bytes[end]) { end += 1 }
        return String(decoding: bytes[at..<end], as: UTF8.self)
    }

    private mutating func literal(_ text: StaticString) throws {
        let start = at
        for expected in UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount) {
            guard current == expected else { throw Problem("not valid JSON: unexpected \(describe())", start) }
            at += 1
        }
    }

    private mutating func object(depth: Int) throws {
        guard depth <= Self.maxDepth else { throw Problem("nested deeper than \(Self.maxDepth) levels", at) }
        at += 1
        skipSpace()
        if current == UInt8(ascii: "}") { at += 1; return }
        var keys = Set<ArraySlice<UInt8>>()
        while true {
            let keyAt = at
            guard current == UInt8(ascii: "\"") else { throw Problem("not valid JSON: expected a key, found \(describe())", at) }
            let key = try string(isKey: true)
            guard keys.insert(key).inserted else {
                throw Problem("duplicate key '\(String(decoding: key, as: UTF8.self))'", keyAt)
            }
            skipSpace()
            guard current == UInt8(ascii: ":") else { throw Problem("not valid JSON: expected ':', found \(describe())", at) }
            at += 1
            skipSpace()
            try value(depth: depth)
            skipSpace()
            switch current {
            case UInt8(ascii: ","): at += 1; skipSpace()
            case UInt8(ascii: "}"): at += 1; return
            default: throw Problem("not valid JSON: expected ',' or '}', found \(describe())", at)
            }
        }
    }

    private mutating func array(depth: Int) throws {
        guard depth <= Self.maxDepth else { throw Problem("nested deeper than \(Self.maxDepth) levels", at) }
        at += 1
        skipSpace()
        if current == UInt8(ascii: "]") { at += 1; return }
        while true {
            try value(depth: depth)
            skipSpace()
            switch current {
            case UInt8(ascii: ","): at += 1; skipSpace()
            case UInt8(ascii: "]"): at += 1; return
            default: throw Problem("not valid JSON: expected ',' or ']', found \(describe())", at)
            }
        }
    }

    /// Scans a string and returns its raw bytes between the quotes (escapes left as written, so two
    /// spellings of one key compare unequal only when both are escaped differently: rare, and
    /// libbson would then keep both, which the database accepts).
    private mutating func string(isKey: Bool = false) throws -> ArraySlice<UInt8> {
        at += 1
        let start = at
        while true {
            guard let byte = current else { throw Problem("not valid JSON: unterminated string", start - 1) }
            switch byte {
            case UInt8(ascii: "\""):
                at += 1
                return ArraySlice(bytes[start..<(at - 1)])
            case UInt8(ascii: "\\"):
                try escape(isKey: isKey)
            case 0..<0x20:
                throw Problem("not valid JSON: control character 0x\(String(byte, radix: 16)) inside a string", at)
            case 0x80...:
                try utf8Sequence()
            default:
                at += 1
            }
        }
    }

    private mutating func escape(isKey: Bool) throws {
        let start = at
        at += 1
        guard let byte = current else { throw Problem("not valid JSON: unterminated escape", start) }
        at += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let unit = try hex4(start)
            if unit == 0 && isKey { throw Problem("a key contains \\u0000 (keys cannot hold a NUL character)", start) }
            if (0xDC00...0xDFFF).contains(unit) { throw Problem("unpaired surrogate escape \\u\(String(unit, radix: 16))", start) }
            if (0xD800...0xDBFF).contains(unit) {
                guard current == UInt8(ascii: "\\"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "u") else {
                    throw Problem("unpaired surrogate escape \\u\(String(unit, radix: 16))", start)
                }
                at += 2
                let low = try hex4(start)
                guard (0xDC00...0xDFFF).contains(low) else { throw Problem("unpaired surrogate escape \\u\(String(unit, radix: 16))", start) }
            }
        default:
            throw Problem("not valid JSON: unknown escape '\\\(Character(UnicodeScalar(byte)))'", start)
        }
    }

    private mutating func hex4(_ escapeStart: Int) throws -> UInt32 {
        var unit: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current, let digit = Self.hexValue(byte) else { throw Problem("not valid JSON: bad \\u escape", escapeStart) }
            unit = unit << 4 | digit
            at += 1
        }
        return unit
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// One multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
    private mutating func utf8Sequence() throws {
        let start = at
        let lead = bytes[at]
        let (count, low, high): (Int, UInt8, UInt8)
        switch lead {
        case 0xC2...0xDF: (count, low, high) = (1, 0x80, 0xBF)
        case 0xE0: (count, low, high) = (2, 0xA0, 0xBF)
        case 0xED: (count, low, high) = (2, 0x80, 0x9F)
        case 0xE1...0xEF: (count, low, high) = (2, 0x80, 0xBF)
        case 0xF0: (count, low, high) = (3, 0x90, 0xBF)
        case 0xF4: (count, low, high) = (3, 0x80, 0x8F)
        case 0xF1...0xF3: (count, low, high) = (3, 0x80, 0xBF)
        default: throw Problem("invalid UTF-8 (byte 0x\(String(lead, radix: 16)))", start)
        }
        at += 1
        for i in 0..<count {
            guard let byte = current, i == 0 ? (low...high).contains(byte) : (0x80...0xBF).contains(byte) else {
                throw Problem("invalid UTF-8 (truncated or overlong sequence)", start)
            }
            at += 1
        }
    }

    private mutating func number() throws {
        let start = at
        if current == UInt8(ascii: "-") {
            at += 1
            if current == UInt8(ascii: "I") { throw Problem("non-finite number -\(word()) (JSON has no NaN or Infinity)", start) }
        }
        guard let first = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            throw Problem("not valid JSON: a number needs a digit", start)
        }
        at += 1
        let integerDigits = first == UInt8(ascii: "0") ? 1 : 1 + digits()
        var integer = true, exponent = false
        if current == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw Problem("not valid JSON: a fraction needs a digit", start) }
            integer = false
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            at += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw Problem("not valid JSON: an exponent needs a digit", start) }
            integer = false
            exponent = true
        }
        // Short numbers cannot overflow: skip the conversion, which is most of this check's cost.
        if integer ? integerDigits <= 18 : !exponent && integerDigits <= 300 { return }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        if integer {
            guard Int64(text) != nil else { throw Problem("integer \(text.prefix(24)) is outside the 64-bit range", start) }
        } else {
            guard let value = Double(text), value.isFinite else { throw Problem("number \(text.prefix(24)) is too large for a double", start) }
        }
    }

    @discardableResult
    private mutating func digits() -> Int {
        let start = at
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { at += 1 }
        return at - start
    }
}
