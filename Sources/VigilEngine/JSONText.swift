import Foundation

/// JSON text helpers shared by the record writer, the audit report and the server's responses and
/// ledger entries.
package enum JSON {
    /// Shortest text that reads back to the same Double; non-finite values as null (JSON has none).
    package static func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }

    package static func string(_ s: String) -> String {
        var out = "\""
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
        return out + "\""
    }
}

