internal import Foundation

/// The significance tests the monitor's alerts use (docs/SERVER.md, "Monitoring"): a one-sided
/// two-proportion z-test of a window's rate against the rate the policy was fitted with, and a
/// chi-square test of a window's histogram against the manifest's reference histogram.
extension Stats {
    /// P(Z >= z) for a standard normal Z.
    package static func normalUpperTail(_ z: Double) -> Double { 0.5 * erfc(z / 2.0.squareRoot()) }

    /// The z statistic of `k / n` (a window) against `p0` estimated on `n0` (the baseline), with
    /// the pooled standard error: positive when the window's rate is below the baseline's. Nil
    /// when either side is empty or the pooled rate is 0 or 1 (no variance to test against).
    package static func proportionDrop(k: Int, n: Int, baseline p0: Double, n0: Int) -> Double? {
        guard n > 0, n0 > 0, p0.isFinite, (0...1).contains(p0) else { return nil }
        let p = Double(k) / Double(n)
        let pooled = (p0 * Double(n0) + Double(k)) / Double(n0 + n)
        let v = pooled * (1 - pooled) * (1 / Double(n0) + 1 / Double(n))
        guard v > 0 else { return nil }
        return (p0 - p) / v.squareRoot()
    }

    /// Chi-square test of homogeneity between `observed` counts and the `reference` counts
    /// (a 2 x k table; buckets empty in both are left out): the statistic, degrees of freedom
    /// and the upper-tail p-value. The reference is itself a sample (the training rows), so
    /// its own noise is accounted for, unlike a goodness-of-fit test against its proportions.
    /// Nil without observations, without a reference, or with fewer than 2 non-empty buckets.
    package static func chiSquare(observed: [Double], reference: [Double]) -> (statistic: Double, df: Int, p: Double)? {
        guard observed.count == reference.count else { return nil }
        let n = observed.reduce(0, +), m = reference.reduce(0, +)
        guard n > 0, m > 0 else { return nil }
        var x2 = 0.0, used = 0
        for (o, r) in zip(observed, reference) where o + r > 0 {
            used += 1
            let eo = n * (o + r) / (n + m), er = m * (o + r) / (n + m)
            x2 += (o - eo) * (o - eo) / eo + (r - er) * (r - er) / er
        }
        guard used >= 2 else { return nil }
        return (x2, used - 1, gammaQ(Double(used - 1) / 2, x2 / 2))
    }

    /// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): a series below
    /// x < a + 1, a continued fraction (modified Lentz) above, each to 1e-14.
    package static func gammaQ(_ a: Double, _ x: Double) -> Double {
        guard x > 0 else { return 1 }
        guard a > 0 else { return 0 }
        let lnPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var sum = 1 / a, term = 1 / a, ap = a
            for _ in 0..<10_000 {
                ap += 1
                term *= x / ap
                sum += term
                if abs(term) < abs(sum) * 1e-15 { break }
            }
            return max(0, 1 - sum * exp(lnPrefix))
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return min(1, exp(lnPrefix) * h)
    }
}
