import Foundation

/// JSON text helpers shared by the record writer, the audit report and the server's responses and
/// ledger entries.
package enum JSON {
    /// Shortest text that reads back to the same Double; non-finite values as null (JSON has none).
    package static func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }

    package static func string(_ s: String) -> String {
        var out = ""
        appendString(s, to: &out)
        return out
    }

    /// Appends `s` as a JSON string literal; a string with nothing to escape (the common case:
    /// ids, labels, names) is appended as it is, without a scalar-by-scalar copy.
    package static func appendString(_ s: String, to out: inout String) {
        if !s.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }) {
            out += "\""
            out += s
            out += "\""
            return
        }
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

