package import Foundation
internal import VigilCore

/// A JSON value that keeps its keys in the order written, for files people read and diff
/// (`policy.json`, audit reports). Numbers print as the shortest text that reads back to the
/// same double; NaN and infinities are refused (JSON has none): callers write `null` with a reason.
package indirect enum JSONOutput: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case int(Int)
    case string(String)
    case array([JSONOutput])
    case object([(String, JSONOutput)])

    package static func == (a: JSONOutput, b: JSONOutput) -> Bool { a.text() == b.text() }

    /// A number, or null for nil.
    package static func optional(_ v: Double?) -> JSONOutput { v.map { .number($0) } ?? .null }

    /// Pretty-printed with two-space indents; short arrays of scalars stay on one line.
    package func text(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1), end = String(repeating: "  ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d):
            precondition(d.isFinite, "JSON has no NaN or infinity; write null with a reason")
            return "\(d)"
        case .string(let s): return Self.quote(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            if a.count <= 16, a.allSatisfy({ if case .array = $0 { return false }; if case .object = $0 { return false }; return true }) {
                return "[" + a.map { $0.text() }.joined(separator: ", ") + "]"
            }
            return "[\n" + a.map { pad + $0.text(indent: indent + 1) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{\n" + o.map { pad + Self.quote($0.0) + ": " + $0.1.text(indent: indent + 1) }.joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    static func quote(_ s: String) -> String { JSON.string(s) }

    package func write(to url: URL) throws {
        do {
            try Data((text() + "\n").utf8).write(to: url, options: .atomic)
        } catch {
            throw VigilError(.io, "\(url.path): cannot write the file (\(error.localizedDescription))")
        }
    }
}
