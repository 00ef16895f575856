package import Foundation
package import VigilCore

/// A parsed JSON value (RFC 8259), read by `JSONValue.parse`: a recursive-descent parser over
/// the bytes. Numbers are converted by the standard library's `Double(_:)` on the token, which
/// rounds correctly (Foundation's `JSONSerialization` on Linux returns long decimals as
/// `NSDecimalNumber`, whose `doubleValue` can be off by an ulp, which is not acceptable for
/// thresholds and coefficients).
///
/// It replaced decoding with `JSONDecoder` through `Decodable`, which tried each kind in turn
/// and built a `DecodingError` for every miss: 61% of the server's time on an Open Inference
/// Protocol request with one small tensor per feature (2.3 ms at p50 against 0.46 ms for the same
/// patient as one tensor).
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Why a document is not JSON, the byte offset where that was found, and the path of the
    /// value being read there (`$.inputs[0].shape`; built only as an error unwinds, so reading a
    /// valid document pays nothing for it).
    package struct ParseError: Error, CustomStringConvertible, Sendable {
        package let offset: Int
        package let reason: String
        /// Path below the document root, e.g. `.inputs[0].name` (empty at the root).
        package var innerPath = ""

        package init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }

        package var path: String { "$" + innerPath }
        package var description: String { "\(reason) at byte \(offset) (\(Untrusted.quote(path, limit: 200)))" }

        /// This error as seen from the enclosing value (`component` is `.key` or `[i]`).
        func inside(_ component: String) -> ParseError {
            var e = self
            // Keep the path readable for deep documents: the outermost levels are kept.
            let p = component + innerPath
            e.innerPath = p.utf8.count > 400 ? String(decoding: p.utf8.prefix(400), as: UTF8.self) + "..." : p
            return e
        }
    }

    /// Nesting deeper than this is refused (an error, not a stack overflow).
    package static let maxDepth = 512

    /// The document in `data`: one value, optionally surrounded by whitespace. A key that appears
    /// twice in an object is refused (RFC 8259 leaves it to the reader; taking the first or the
    /// last silently lets two readers of one request disagree), naming the key, its path and
    /// offset. Numbers must be finite doubles (`1e999` is refused, not read as infinity). With `nanAsNull`,
    /// the bare token `NaN` (not JSON, but what Python's `json` and so tritonclient write for a
    /// missing float) is read as `null` wherever a value may stand.
    package static func parse(_ data: Data, nanAsNull: Bool = false) throws -> JSONValue {
        try data.withUnsafeBytes { raw in
            var p = JSONParser(bytes: raw.bindMemory(to: UInt8.self), nanAsNull: nanAsNull)
            p.skipWhitespace()
            let v = try p.value(depth: 0)
            p.skipWhitespace()
            guard p.at == p.bytes.count else { throw p.error("unexpected data after the JSON value") }
            return v
        }
    }
}

/// The parser behind `JSONValue.parse`.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let nanAsNull: Bool
    var at = 0

    init(bytes: UnsafeBufferPointer<UInt8>, nanAsNull: Bool) {
        self.bytes = bytes
        self.nanAsNull = nanAsNull
    }

    func error(_ reason: String) -> JSONValue.ParseError { JSONValue.ParseError(offset: at, reason: reason) }

    var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    mutating func skipWhitespace() {
        while at < bytes.count {
            switch bytes[at] {
            case 0x20, 0x09, 0x0A, 0x0D: at += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard let c = peek else { throw error("unexpected end of data, expected a value") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "N") where nanAsNull: try literal("NaN"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected character '\(Self.show(c))', expected a value")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONValue.ParseError) {
        let n = word.utf8CodeUnitCount
        guard at + n <= bytes.count, memcmp(bytes.baseAddress! + at, word.utf8Start, n) == 0 else {
            throw error("invalid literal, expected '\(word)'")
        }
        at += n
    }

    mutating func object(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw error("nesting deeper than \(JSONValue.maxDepth) levels") }
        at += 1  // {
        var dict: [String: JSONValue] = [:]
        skipWhitespace()
        if peek == UInt8(ascii: "}") { at += 1; return .object(dict) }
        while true {
            guard peek == UInt8(ascii: "\"") else { throw error("expected a string key in an object") }
            let keyStart = at
            let key = try string()
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
            at += 1
            skipWhitespace()
            let v: JSONValue
            do { v = try value(depth: depth) } catch { throw error.inside(Self.component(key)) }
            guard dict.updateValue(v, forKey: key) == nil else {
                at = keyStart
                throw error("duplicate key '\(Untrusted.quote(key))' in an object; each key may appear once").inside(Self.component(key))
            }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ",")?: at += 1; skipWhitespace()
            case UInt8(ascii: "}")?: at += 1; return .object(dict)
            default: throw error(peek == nil ? "unexpected end of data in an object" : "expected ',' or '}' in an object")
            }
        }
    }

    mutating func array(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw error("nesting deeper than \(JSONValue.maxDepth) levels") }
        at += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { at += 1; return .array(items) }
        while true {
            do { items.append(try value(depth: depth)) } catch { throw error.inside("[\(items.count)]") }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ",")?: at += 1; skipWhitespace()
            case UInt8(ascii: "]")?: at += 1; return .array(items)
            default: throw error(peek == nil ? "unexpected end of data in an array" : "expected ',' or ']' in an array")
            }
        }
    }

    /// A number token (RFC 8259 grammar), converted by `Double(_:)` (correctly rounded).
    mutating func number() throws(JSONValue.ParseError) -> Double {
        let start = at
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.at
            while let c = p.peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { p.at += 1 }
            return p.at - s
        }
        if peek == UInt8(ascii: "-") { at += 1 }
        if peek == UInt8(ascii: "0") {
            at += 1
        } else if digits(&self) == 0 {
            throw error("invalid number: expected a digit")
        }
        if peek == UInt8(ascii: ".") {
            at += 1
            guard digits(&self) > 0 else { throw error("invalid number: expected a digit after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            at += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
            guard digits(&self) > 0 else { throw error("invalid number: expected a digit in the exponent") }
        }
        let token = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
        guard let d = Double(token), d.isFinite else {
            at = start
            throw error("number \(Untrusted.quote(token)) is not representable as a finite double (beyond ±1.8e308)")
        }
        return d
    }

    /// A string token with its escapes resolved (`\uXXXX` surrogate pairs joined; a lone
    /// surrogate or a raw control character is refused).
    mutating func string() throws(JSONValue.ParseError) -> String {
        at += 1  // opening quote
        let start = at
        // Fast path: no escapes.
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                let s = try utf8(start, at)
                at += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("unescaped control character in a string") }
            at += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<at]))
        while true {
            guard at < bytes.count else { throw error("unexpected end of data in a string") }
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                at += 1
                return try utf8(out)
            }
            if c < 0x20 { throw error("unescaped control character in a string") }
            guard c == UInt8(ascii: "\\") else { out.append(c); at += 1; continue }
            at += 1
            guard let e = peek else { throw error("unexpected end of data in a string escape") }
            at += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard peek == UInt8(ascii: "\\"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired UTF-16 surrogate in a \\u escape")
                    }
                    at += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired UTF-16 surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("unpaired UTF-16 surrogate in a \\u escape")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default:
                at -= 1
                throw error("invalid escape '\\\(Self.show(e))' in a string")
            }
        }
    }

    mutating func hex4() throws(JSONValue.ParseError) -> UInt32 {
        guard at + 4 <= bytes.count else { throw error("unexpected end of data in a \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[at]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in a \\u escape")
            }
            v = v << 4 | d
            at += 1
        }
        return v
    }

    /// The bytes `from..<to` as a string; invalid UTF-8 is refused.
    func utf8(_ from: Int, _ to: Int) throws(JSONValue.ParseError) -> String {
        try utf8(UnsafeBufferPointer(rebasing: bytes[from..<to]))
    }

    func utf8<C: Collection>(_ b: C) throws(JSONValue.ParseError) -> String where C.Element == UInt8 {
        guard let s = String(validating: b, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
        return s
    }

    /// `.key` for a path (the key cut to a readable length).
    static func component(_ key: String) -> String { "." + Untrusted.quote(key, limit: 40) }

    static func show(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : String(format: "\\x%02X", c)
    }
}

/// A JSON document navigated with paths, so that every error names where it is
/// (`learner.gradient_booster.model.trees[3].split_indices[7]`).
package struct JSONNode {
    package let value: JSONValue
    package let path: String
    package let file: String

    package init(value: JSONValue, path: String, file: String) {
        self.value = value
        self.path = path
        self.file = file
    }

    package static func parse(_ data: Data, file: String) throws -> JSONNode {
        do {
            return JSONNode(value: try JSONValue.parse(data), path: "$", file: file)
        } catch let error as JSONValue.ParseError {
            throw VigilError.modelFormat(file, at: "byte \(error.offset) (\(Untrusted.quote(error.path, limit: 200)))", "not valid JSON (truncated or corrupt): \(error.reason)")
        }
    }

    package func fail(_ message: String) -> VigilError {
        .modelFormat(file, at: path, message)
    }

    package var isNull: Bool { value == .null }

    package func optional(_ key: String) -> JSONNode? {
        guard case .object(let dict) = value, let v = dict[key] else { return nil }
        return JSONNode(value: v, path: "\(path).\(key)", file: file)
    }

    package subscript(key: String) -> JSONNode {
        get throws {
            guard case .object(let dict) = value else { throw fail("expected an object, found \(typeName)") }
            guard let v = dict[key] else { throw fail("the key '\(key)' is missing") }
            return JSONNode(value: v, path: "\(path).\(key)", file: file)
        }
    }

    package var keys: [String] {
        if case .object(let dict) = value { return Array(dict.keys) }
        return []
    }

    package func array() throws -> [JSONNode] {
        guard case .array(let a) = value else { throw fail("expected an array, found \(typeName)") }
        return a.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    package func string() throws -> String {
        guard case .string(let s) = value else { throw fail("expected a string, found \(typeName)") }
        return s
    }

    /// A number, or a string holding a number (XGBoost writes most parameters as strings).
    package func double() throws -> Double {
        switch value {
        case .number(let d): return d
        case .bool(let b): return b ? 1 : 0
        case .string(let s):
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw fail("'\(Untrusted.quote(s))' is not a number") }
            return d
        default: throw fail("expected a number, found \(typeName)")
        }
    }

    package func int() throws -> Int {
        let d = try double()
        guard let i = Int(exactly: d) else { throw fail("\(d) is not an integer") }
        return i
    }

    /// An array of numbers (booleans read as 0/1).
    package func doubles() throws -> [Double] {
        guard case .array(let a) = value else { throw fail("expected an array of numbers, found \(typeName)") }
        var out = [Double]()
        out.reserveCapacity(a.count)
        for (i, v) in a.enumerated() {
            switch v {
            case .number(let d): out.append(d)
            case .bool(let b): out.append(b ? 1 : 0)
            default: throw JSONNode(value: v, path: "\(path)[\(i)]", file: file).fail("expected a number, found \(JSONNode(value: v, path: "", file: "").typeName)")
            }
        }
        return out
    }

    package func ints() throws -> [Int] {
        try doubles().enumerated().map { i, d in
            guard let v = Int(exactly: d) else { throw JSONNode(value: .number(d), path: "\(path)[\(i)]", file: file).fail("\(d) is not an integer") }
            return v
        }
    }

    package var typeName: String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Refuses keys outside `allowed` (strict by default), naming the first unknown one.
    package func requireKeys(in allowed: Set<String>) throws {
        if let unknown = keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail("unknown key '\(Untrusted.quote(unknown))' (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }
}
