import TensorCore

/// A parsed JSON value that keeps what `JSONSerialization` throws away and file validation needs:
/// object keys in file order, duplicate keys detected (an error, not "last one wins"), and numbers
/// kept as their source text so `384`, `384.0` and `"384"` stay distinguishable.
///
/// Used for safetensors headers, Hugging Face `config.json` and `vocab.json`. See docs/io.md.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's source text, e.g. `"384"`, `"1e-12"`, `"-0.5"`.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Keys in file order; `members[key]` holds the value.
    case object(keys: [String], members: [String: JSONValue])

    /// The value as an exact integer, or nil when it is not a number written as an integer
    /// (`2.0` and `1e3` are rejected: shapes and offsets must be written as integers).
    public var exactInteger: Int? {
        guard case .number(let text) = self else { return nil }
        return Int(text)
    }

    /// The value as a Double when it is a JSON number.
    public var double: Double? {
        guard case .number(let text) = self else { return nil }
        return Double(text)
    }

    /// A short name of the value's kind for error messages ("an integer", "a string" …).
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number(let t): return Int(t) != nil ? "an integer (\(t))" : "a number (\(t))"
        case .string(let s): return "a string (\"\(s.prefix(40))\")"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Parses `bytes` as one JSON value (surrounding whitespace allowed). Errors are
    /// `.malformedFile(path:location: "byte N":reason:)`, where N is `byteOffset` + the position.
    ///
    /// Nesting deeper than `maxDepth` is an error (it bounds recursion on hostile input).
    public static func parse<C: Collection>(
        _ bytes: C, path: String, byteOffset: Int = 0, maxDepth: Int = 256
    ) throws -> JSONValue where C.Element == UInt8 {
        var parser = JSONParser(bytes: Array(bytes), path: path, byteOffset: byteOffset, maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Serializes compactly (no spaces), keys in the stored order, strings escaped per RFC 8259.
    public var serialized: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let t): return t
        case .string(let s): return JSONValue.quote(s)
        case .array(let items): return "[" + items.map(\.serialized).joined(separator: ",") + "]"
        case .object(let keys, let members):
            return "{" + keys.map { JSONValue.quote($0) + ":" + members[$0]!.serialized }.joined(separator: ",") + "}"
        }
    }

    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A strict RFC 8259 parser over bytes with byte positions in every error.
struct JSONParser {
    let bytes: [UInt8]
    let path: String
    let byteOffset: Int
    let maxDepth: Int
    var pos = 0

    init(bytes: [UInt8], path: String, byteOffset: Int, maxDepth: Int) {
        self.bytes = bytes
        self.path = path
        self.byteOffset = byteOffset
        self.maxDepth = maxDepth
    }

    func fail(_ reason: String, at position: Int? = nil) -> DecoderSpecError {
        .malformedFile(path: path, location: "byte \(byteOffset + (position ?? pos))", reason: "invalid JSON: \(reason)")
    }

    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if pos != bytes.count { throw fail("unexpected \(describe(bytes[pos])) after the end of the value") }
        return value
    }

    func describe(_ b: UInt8) -> String {
        (0x21...0x7E).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }

    mutating func skipWhitespace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
        guard pos < bytes.count else { throw fail("unexpected end of input, expected a value") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected \(describe(bytes[pos])), expected a value")
        }
    }

    mutating func expectLiteral(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<(pos + w.count)]) == w else {
            throw fail("expected '\(word)'")
        }
        pos += w.count
    }

    mutating func parseObject(depth: Int) throws -> JSONValue {
        pos += 1  // {
        var keys: [String] = []
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(keys: [], members: [:]) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw fail(pos < bytes.count ? "expected a string key, found \(describe(bytes[pos]))" : "unexpected end of input inside an object")
            }
            let keyStart = pos
            let key = try parseString()
            if members[key] != nil { throw fail("duplicate key \"\(key)\"", at: keyStart) }
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            keys.append(key)
            members[key] = value
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of input inside an object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(keys: keys, members: members) }
            throw fail("expected ',' or '}' in an object, found \(describe(bytes[pos]))")
        }
    }

    mutating func parseArray(depth: Int) throws -> JSONValue {
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array([]) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unexpected end of input inside an array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw fail("expected ',' or ']' in an array, found \(describe(bytes[pos]))")
        }
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = pos
        func digits() -> Int {
            let s = pos
            while pos < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[pos]) { pos += 1 }
            return pos - s
        }
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < bytes.count else { throw fail("a number needs digits", at: start) }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
        } else if digits() == 0 {
            throw fail("a number needs digits", at: start)
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            if digits() == 0 { throw fail("a fraction needs digits after '.'", at: start) }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            if digits() == 0 { throw fail("an exponent needs digits", at: start) }
        }
        return .number(String(decoding: bytes[start..<pos], as: UTF8.self))
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit \(describe(b)) in a \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    /// Parses a string literal, validating UTF-8 and escapes.
    mutating func parseString() throws -> String {
        let start = pos
        pos += 1  // opening quote
        var raw: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw fail("unterminated string", at: start) }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw fail("control character 0x\(String(b, radix: 16)) inside a string (must be escaped)") }
            if b != UInt8(ascii: "\\") { raw.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { throw fail("unterminated escape", at: start) }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): raw.append(0x22)
            case UInt8(ascii: "\\"): raw.append(0x5C)
            case UInt8(ascii: "/"): raw.append(0x2F)
            case UInt8(ascii: "b"): raw.append(0x08)
            case UInt8(ascii: "f"): raw.append(0x0C)
            case UInt8(ascii: "n"): raw.append(0x0A)
            case UInt8(ascii: "r"): raw.append(0x0D)
            case UInt8(ascii: "t"): raw.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired high surrogate in a \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate in a \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw fail("unpaired low surrogate in a \\u escape")
                }
                raw.append(contentsOf: Array(String(Character(Unicode.Scalar(code)!)).utf8))
            default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'", at: pos - 2)
            }
        }
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw fail("invalid UTF-8 inside a string", at: start)
        }
        return s
    }
}
