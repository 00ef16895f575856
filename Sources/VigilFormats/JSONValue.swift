public import Foundation
package import VigilCore

/// A parsed JSON value. Decoded with `JSONDecoder`, which reads numbers exactly (correctly
/// rounded); Foundation's `JSONSerialization` on Linux returns long decimals as
/// `NSDecimalNumber`, whose `doubleValue` can be off by an ulp, which is not acceptable for
/// thresholds and coefficients.
package enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    package static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
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
        } catch let error as DecodingError {
            var detail = "\(error)"
            if case .dataCorrupted(let ctx) = error {
                detail = ctx.debugDescription
                if let u = ctx.underlyingError { detail += " (\((u as NSError).userInfo["NSDebugDescription"] as? String ?? "\(u)"))" }
            }
            throw VigilError.modelFormat(file, at: "byte \(data.count)", "not valid JSON (truncated or corrupt): \(detail)")
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
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw fail("'\(s.prefix(40))' is not a number") }
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
            throw fail("unknown key '\(unknown)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }
}
