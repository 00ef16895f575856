/// FHIR R4 `dateTime`, `instant` and `date` values (http://hl7.org/fhir/R4/datatypes.html),
/// read strictly as seconds since 1970-01-01T00:00:00Z. A time is only as exact as written:
/// `scoringInstant` needs hours, so an Observation's time must carry a time of day and a zone
/// (`2026-12-04T10:15:00Z`, `...+01:00`); a birth date may be `YYYY-MM-DD`.
enum FHIRTime {
    /// A full `dateTime`/`instant` with time and zone, as epoch seconds; nil when not one.
    static func instant(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard b.count >= 20, b.count <= 40, let (days, rest) = date(b), rest == 10, b[10] == UInt8(ascii: "T") else { return nil }
        guard let h = digits(b, 11, 2), b[13] == UInt8(ascii: ":"), let mi = digits(b, 14, 2), b[16] == UInt8(ascii: ":"), let sec = digits(b, 17, 2) else { return nil }
        guard h <= 23, mi <= 59, sec <= 60 else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { fraction += Double(b[i] - 48) * scale; scale /= 10; i += 1 }
            guard i > start, i - start <= 9 else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard i + 6 == b.count, let oh = digits(b, i + 1, 2), b[i + 3] == UInt8(ascii: ":"), let om = digits(b, i + 4, 2), oh <= 14, om <= 59 else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return Double(days * 86400 + h * 3600 + mi * 60 + sec - offset) + fraction
    }

    /// A full `date` (`YYYY-MM-DD`) as days since 1970-01-01; nil when not one.
    static func day(_ s: String) -> Int? {
        let b = Array(s.utf8)
        guard b.count == 10, let (days, _) = date(b) else { return nil }
        return days
    }

    /// The date `YYYY-MM-DD` at the start of `b`: days since the epoch and where it ends.
    private static func date(_ b: [UInt8]) -> (Int, Int)? {
        guard b.count >= 10, let y = digits(b, 0, 4), b[4] == UInt8(ascii: "-"), let m = digits(b, 5, 2), b[7] == UInt8(ascii: "-"), let d = digits(b, 8, 2) else { return nil }
        guard (1...12).contains(m), d >= 1, d <= daysIn(month: m, year: y) else { return nil }
        return (daysFromCivil(y, m, d), 10)
    }

    private static func digits(_ b: [UInt8], _ at: Int, _ n: Int) -> Int? {
        guard at + n <= b.count else { return nil }
        var v = 0
        for k in at..<(at + n) {
            guard b[k] >= 48, b[k] <= 57 else { return nil }
            v = v * 10 + Int(b[k] - 48)
        }
        return v
    }

    static func daysIn(month m: Int, year y: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The civil date of `days` since the epoch.
    static func civil(_ days: Int) -> (y: Int, m: Int, d: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Whole years from birth day `birth` to the day of `instant` (the birthday counts).
    static func age(birth: Int, at instant: Double) -> Int {
        let b = civil(birth), n = civil(Int((instant / 86400).rounded(.down)))
        var years = n.y - b.y
        if (n.m, n.d) < (b.m, b.d) { years -= 1 }
        return years
    }

    /// `instant` as a FHIR instant in UTC, to the millisecond (`2026-12-04T10:15:00.000Z`).
    static func text(_ instant: Double) -> String {
        let ms = Int((instant * 1000).rounded(.down))
        let secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let c = civil(days)
        let s = secs - days * 86400
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let milli = ms - secs * 1000
        let m3 = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
        return "\(String(format4: c.y))-\(two(c.m))-\(two(c.d))T\(two(s / 3600)):\(two(s / 60 % 60)):\(two(s % 60)).\(m3)Z"
    }
}

private extension String {
    init(format4 v: Int) {
        let t = String(v)
        self = v >= 0 && t.count < 4 ? String(repeating: "0", count: 4 - t.count) + t : t
    }
}
