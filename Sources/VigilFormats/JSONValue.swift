public import Foundation
internal import VigilCore

/// A JSON document navigated with paths, so that every error names where it is
/// (`learner.gradient_booster.model.trees[3].split_indices[7]`).
struct JSONNode {
    let value: Any
    let path: String
    let file: String

    static func parse(_ data: Data, file: String) throws -> JSONNode {
        do {
            let v = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return JSONNode(value: v, path: "$", file: file)
        } catch {
            let detail = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error)"
            throw VigilError.modelFormat(file, at: "byte \(data.count)", "not valid JSON (truncated or corrupt): \(detail)")
        }
    }

    func fail(_ message: String) -> VigilError {
        .modelFormat(file, at: path, message)
    }

    var isNull: Bool { value is NSNull }

    func optional(_ key: String) -> JSONNode? {
        guard let dict = value as? [String: Any], let v = dict[key] else { return nil }
        return JSONNode(value: v, path: "\(path).\(key)", file: file)
    }

    subscript(key: String) -> JSONNode {
        get throws {
            guard let dict = value as? [String: Any] else { throw fail("expected an object") }
            guard let v = dict[key] else { throw fail("the key '\(key)' is missing") }
            return JSONNode(value: v, path: "\(path).\(key)", file: file)
        }
    }

    var keys: [String] { (value as? [String: Any]).map { Array($0.keys) } ?? [] }

    func array() throws -> [JSONNode] {
        guard let a = value as? [Any] else { throw fail("expected an array") }
        return a.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    func string() throws -> String {
        guard let s = value as? String else { throw fail("expected a string, found \(typeName)") }
        return s
    }

    /// A number, or a string holding a number (XGBoost writes most parameters as strings).
    func double() throws -> Double {
        if let s = value as? String {
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw fail("'\(s.prefix(40))' is not a number") }
            return d
        }
        if let n = value as? NSNumber {
            return n.doubleValue
        }
        throw fail("expected a number, found \(typeName)")
    }

    func int() throws -> Int {
        let d = try double()
        guard let i = Int(exactly: d) else { throw fail("\(d) is not an integer") }
        return i
    }

    func doubles() throws -> [Double] {
        guard let a = value as? [Any] else { throw fail("expected an array of numbers") }
        var out = [Double]()
        out.reserveCapacity(a.count)
        for (i, v) in a.enumerated() {
            if let b = v as? Bool, !(v is NSNumber) { out.append(b ? 1 : 0); continue }
            guard let n = v as? NSNumber else {
                throw JSONNode(value: v, path: "\(path)[\(i)]", file: file).fail("expected a number")
            }
            out.append(n.doubleValue)
        }
        return out
    }

    func ints() throws -> [Int] {
        try doubles().enumerated().map { i, d in
            guard let v = Int(exactly: d) else { throw JSONNode(value: d, path: "\(path)[\(i)]", file: file).fail("\(d) is not an integer") }
            return v
        }
    }

    private var typeName: String {
        switch value {
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        default: return "\(type(of: value))"
        }
    }
}
