#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import VigilFormats

/// The one reading of a feature value in a row, for every input path: CSV fields and JSON
/// Lines values (`CohortReader`) and request bodies (the server's `RequestParser`) all call it,
/// so a token means the same thing in a file and in a request.
///
/// Text (a CSV field, a JSON string) is accepted when, after spaces and tabs around it, it is
/// - a missing token: empty, `NaN` (any case), `NA` or `?` (as `MissingValues`), read as NaN;
/// - a decimal number: optional sign, digits with an optional fraction (at least one digit in
///   all), an optional exponent (`e`/`E`, optional sign, digits), whose value is a finite double.
/// Everything else is refused with a rule: `inf`/`infinity`, a number that overflows a double
/// (`1e999`), hexadecimal floats (`0x1p3`), and any other character before, inside or after the
/// number. JSON values: a number as parsed (always finite), `null` (missing), a boolean (1/0), a
/// string as text above; arrays and objects are refused.
package enum RowNumber {
    /// A value, or why it is refused (the rule, for an error message that also names the place,
    /// the field and the value).
    package enum Reading: Equatable, Sendable {
        case value(Double)
        case refused(String)
    }

    /// Longest number token read (longer ones are refused): far above any decimal a writer emits
    /// for a double (17 significant digits and an exponent), and a bound on the copy below.
    package static let maxTokenBytes = 63

    static let missingHint = "missing values are written empty, NaN, NA or ? (or null in JSON)"

    /// The bytes `lo..<hi` of `buf` (a CSV field without its quotes, or a string's UTF-8).
    @inline(__always)
    package static func read(_ buf: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> Reading {
        var lo = lo, hi = hi
        while lo < hi, buf[lo] == 0x20 || buf[lo] == 0x09 { lo += 1 }
        while hi > lo, buf[hi - 1] == 0x20 || buf[hi - 1] == 0x09 { hi -= 1 }
        let len = hi - lo
        if len == 0 { return .value(.nan) }
        if len == 1, buf[lo] == UInt8(ascii: "?") { return .value(.nan) }
        if len == 2, buf[lo] == UInt8(ascii: "N"), buf[lo + 1] == UInt8(ascii: "A") { return .value(.nan) }
        if len == 3, buf[lo] | 0x20 == UInt8(ascii: "n"), buf[lo + 1] | 0x20 == UInt8(ascii: "a"), buf[lo + 2] | 0x20 == UInt8(ascii: "n") {
            return .value(.nan)
        }
        // The grammar, in one pass: [sign] digits [. digits] [(e|E) [sign] digits].
        var i = lo
        @inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        if buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
        var mantissaDigits = 0
        while i < hi, isDigit(buf[i]) { i += 1; mantissaDigits += 1 }
        if i < hi, buf[i] == UInt8(ascii: ".") {
            i += 1
            while i < hi, isDigit(buf[i]) { i += 1; mantissaDigits += 1 }
        }
        guard mantissaDigits > 0 else { return .refused(notANumber(buf, lo, hi)) }
        if i < hi, buf[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < hi, buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
            var exponentDigits = 0
            while i < hi, isDigit(buf[i]) { i += 1; exponentDigits += 1 }
            guard exponentDigits > 0 else { return .refused("is not a number: the exponent has no digits (\(missingHint))") }
        }
        guard i == hi else { return .refused(notANumber(buf, lo, hi)) }
        guard len <= maxTokenBytes else {
            return .refused("is a number of \(len) characters, longer than the limit of \(maxTokenBytes)")
        }
        // strtod on a NUL-terminated copy; the grammar above keeps it from reading hexadecimal,
        // `inf` or `nan` spellings, so it converts exactly the token (correctly rounded).
        var tmp: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        let v = withUnsafeMutableBytes(of: &tmp) { raw -> Double in
            let p = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            for k in 0..<len { p[k] = CChar(bitPattern: buf[lo + k]) }
            p[len] = 0
            return strtod(p, nil)
        }
        guard v.isFinite else { return .refused("is not a number Vigil accepts: it overflows a double (beyond ±1.8e308) and would read as infinity; a value must be finite") }
        return .value(v)
    }

    /// The rule for text that is not a number, with what it looks like (infinity, hexadecimal).
    static func notANumber(_ buf: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> String {
        var i = lo
        if buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
        let n = hi - i
        if n == 3 || n == 8 {
            let word = String(decoding: UnsafeBufferPointer(rebasing: buf[i..<hi]), as: UTF8.self).lowercased()
            if word == "inf" || word == "infinity" { return "is not a number Vigil accepts: infinity is refused; a value must be a finite decimal number" }
        }
        if n > 2, buf[i] == UInt8(ascii: "0"), buf[i + 1] | 0x20 == UInt8(ascii: "x") {
            return "is not a number Vigil accepts: hexadecimal is refused; values are decimal"
        }
        return "is not a number (a decimal number: optional sign, digits, fraction, exponent; \(missingHint))"
    }

    /// Text (a JSON string's value, a field).
    package static func read(_ text: String) -> Reading {
        var text = text
        return text.withUTF8 { read($0, 0, $0.count) }
    }

    /// A JSON value of a row (a JSON Lines object's member or a request's field or tensor item).
    @inline(__always)
    package static func read(_ v: JSONValue) -> Reading {
        switch v {
        case .null: return .value(.nan)
        case .number(let d):
            return d.isFinite ? .value(d) : .refused("is not a finite number")
        case .bool(let b): return .value(b ? 1 : 0)
        case .string(let s): return read(s)
        case .array: return .refused("is a JSON array, not a number")
        case .object: return .refused("is a JSON object, not a number")
        }
    }
}
