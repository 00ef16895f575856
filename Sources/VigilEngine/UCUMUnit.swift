/// The UCUM units (https://ucum.org) a feature pipeline converts between: each is a dimension, a
/// factor to the dimension's base and an offset (temperature). A value arriving in another unit of
/// the same dimension is converted (`122 mg/dL` creatinine as `10.8 mmol/L` is not: mass and
/// amount of substance differ by a molar mass, which a unit alone does not give, so that is
/// refused). Units are matched as written in UCUM's case-sensitive form, plus the annotations
/// clinical systems add (`{beats}/min` is `/min`).
package struct UCUMUnit: Sendable, Equatable {
    package enum Dimension: String, Sendable {
        case time, massConcentration, substanceConcentration, equivalentConcentration, catalyticConcentration
        case countConcentration, fraction, rate, pressure, temperature, mass, length, dimensionless, pH
    }

    package let dimension: Dimension
    package let factor: Double
    package let offset: Double

    /// `unit` as written (annotations in braces dropped: `{beats}/min` = `/min`, `{score}` = `1`).
    package init?(_ unit: String) {
        var text = ""
        var depth = 0
        for ch in unit {
            if ch == "{" { depth += 1; continue }
            if ch == "}" { depth = max(0, depth - 1); continue }
            if depth == 0 { text.append(ch) }
        }
        if text.isEmpty || text == "/" { text = text.isEmpty ? "1" : "/" }
        guard let u = Self.table[text] else { return nil }
        self = u
    }

    private init(_ d: Dimension, _ factor: Double, _ offset: Double = 0) {
        dimension = d
        self.factor = factor
        self.offset = offset
    }

    /// `value` in `from` written in `to`; nil when either is unknown or their dimensions differ.
    package static func convert(_ value: Double, from: String, to: String) -> Double? {
        if from == to { return value }
        guard let a = UCUMUnit(from), let b = UCUMUnit(to), a.dimension == b.dimension else { return nil }
        if a == b { return value }
        return ((value * a.factor + a.offset) - b.offset) / b.factor
    }

    /// The units known, for messages.
    package static var known: String { "e.g. h, min, mg/dL, mmol/L, %, Cel, [degF], mm[Hg], /min, 10*3/uL; see docs/FORMATS.md" }

    private static let table: [String: UCUMUnit] = {
        var t: [String: UCUMUnit] = [:]
        // time (base: second)
        for (u, f) in [("s", 1.0), ("min", 60), ("h", 3600), ("d", 86400), ("wk", 604800), ("a", 31_557_600), ("mo", 2_629_800)] { t[u] = .init(.time, f) }
        // mass concentration (base: g/L)
        for (u, f) in [("g/L", 1.0), ("g/dL", 10), ("mg/dL", 0.01), ("mg/L", 1e-3), ("ug/mL", 1e-3), ("ug/L", 1e-6), ("ng/mL", 1e-6), ("ug/dL", 1e-5), ("pg/mL", 1e-9), ("g/mL", 1000), ("kg/L", 1000)] { t[u] = .init(.massConcentration, f) }
        // amount-of-substance concentration (base: mol/L)
        for (u, f) in [("mol/L", 1.0), ("mmol/L", 1e-3), ("umol/L", 1e-6), ("nmol/L", 1e-9), ("pmol/L", 1e-12), ("mmol/dL", 1e-2)] { t[u] = .init(.substanceConcentration, f) }
        for (u, f) in [("eq/L", 1.0), ("meq/L", 1e-3), ("mEq/L", 1e-3)] { t[u] = .init(.equivalentConcentration, f) }
        // catalytic activity concentration (international units of enzymes, as reported)
        for (u, f) in [("U/L", 1.0), ("[IU]/L", 1), ("IU/L", 1), ("kU/L", 1000), ("U/mL", 1000), ("[IU]/mL", 1000)] { t[u] = .init(.catalyticConcentration, f) }
        // number concentration (base: per litre)
        for (u, f) in [("/L", 1.0), ("10*9/L", 1e9), ("10*3/uL", 1e9), ("10*3/mm3", 1e9), ("K/uL", 1e9), ("/uL", 1e6), ("/mm3", 1e6), ("10*6/uL", 1e12), ("10*12/L", 1e12)] { t[u] = .init(.countConcentration, f) }
        for (u, f) in [("1", 1.0), ("%", 0.01)] { t[u] = .init(.fraction, f) }
        for (u, f) in [("/min", 1.0), ("/h", 1.0 / 60), ("/s", 60)] { t[u] = .init(.rate, f) }
        for (u, f) in [("mm[Hg]", 1.0), ("kPa", 7.500_615_758_456_563), ("Pa", 0.007_500_615_758_456_563), ("cm[H2O]", 0.735_559_121_015_916)] { t[u] = .init(.pressure, f) }
        t["Cel"] = .init(.temperature, 1, 273.15)
        t["K"] = .init(.temperature, 1, 0)
        t["[degF]"] = .init(.temperature, 5.0 / 9.0, 273.15 - 32 * 5.0 / 9.0)
        for (u, f) in [("kg", 1000.0), ("g", 1), ("[lb_av]", 453.592_37)] { t[u] = .init(.mass, f) }
        for (u, f) in [("m", 1.0), ("cm", 0.01), ("mm", 0.001), ("[in_i]", 0.0254)] { t[u] = .init(.length, f) }
        t["[pH]"] = .init(.pH, 1)
        t["pH"] = .init(.pH, 1)
        return t
    }()
}
