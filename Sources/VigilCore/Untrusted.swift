/// Helpers for numbers and text that come from outside (a request, a model file, a cohort, the
/// ledger): every product or sum of untrusted sizes is computed with overflow reported and
/// bounded by a named limit, and every value echoed in an error is cut to a readable length.
/// One home for these, so that every loader, parser and route applies the same rule.
package enum Untrusted {
    /// Whether `s` is exactly `count` lowercase hexadecimal digits (`0-9a-f`): the one check of a
    /// digest or key id read from a file (a policy's model binding, a ledger entry, a signature).
    package static func isLowercaseHex(_ s: some StringProtocol, count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Whether `s` holds a C0 control character or DEL (a newline too, unless allowed): text read
    /// from a file that ends up in reports, logs and error lines.
    package static func containsControlCharacter(_ s: some StringProtocol, allowingNewline: Bool = false) -> Bool {
        s.unicodeScalars.contains { ($0.value < 0x20 && !(allowingNewline && $0 == "\n")) || $0.value == 0x7F }
    }

    /// Longest value an error message quotes, in bytes of UTF-8 (longer ones are cut and say so).
    package static let quotedValueLimit = 80

    /// `value` for an error message: at most `limit` bytes of it, cut at a character boundary,
    /// followed by `... (N bytes)` when cut; control characters are shown escaped so that an
    /// error line stays one line.
    package static func quote(_ value: some StringProtocol, limit: Int = quotedValueLimit) -> String {
        var out = ""
        var used = 0
        var cut = false
        for scalar in value.unicodeScalars {
            let shown: String
            switch scalar {
            case "\n": shown = "\\n"
            case "\r": shown = "\\r"
            case "\t": shown = "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                shown = "\\u{\(String(scalar.value, radix: 16))}"
            default: shown = String(scalar)
            }
            let n = shown.utf8.count
            if used + n > limit {
                cut = true
                break
            }
            out += shown
            used += n
        }
        if cut { out += "... (\(value.utf8.count) bytes)" }
        return out
    }

    /// The product of `sizes`, or an error naming `place`, the sizes and the rule when it
    /// overflows or exceeds `limit` (an element count a request, file or image may hold).
    package static func product(_ sizes: [Int], limit: Int, place: String, what: String = "elements") throws -> Int {
        var total = 1
        for s in sizes {
            guard s >= 0 else {
                throw VigilError(.input, "\(place): size \(s) is negative; sizes are non-negative integers")
            }
            let (p, overflow) = total.multipliedReportingOverflow(by: s)
            guard !overflow, p <= limit else {
                throw VigilError(.input, "\(place): sizes \(quote(sizes.description)) hold more than the limit of \(limit) \(what)")
            }
            total = p
        }
        return total
    }

    /// `a * b`, or an error naming `place` when it overflows or exceeds `limit`.
    package static func product(_ a: Int, _ b: Int, limit: Int = Int.max, place: String, what: String = "elements") throws -> Int {
        try product([a, b], limit: limit, place: place, what: what)
    }

    /// An exact integer from a JSON or text number (`1`, `7.0`), or nil when the value has a
    /// fraction, is not finite, or lies outside `range`: never a trapping `Int(_:)` conversion.
    package static func integer(_ d: Double, in range: ClosedRange<Int> = Int.min...Int.max) -> Int? {
        guard d.isFinite, d == d.rounded(.towardZero),
              d >= -9.223372036854775e18, d < 9.223372036854775e18 else { return nil }
        let i = Int(d)
        return range.contains(i) ? i : nil
    }
}
