internal import Foundation

/// Rates and distribution distances that the audit and the monitor both derive from counts:
/// the Wilson score interval of a proportion, the population stability index and the
/// Jensen-Shannon divergence between a histogram and its reference.
package enum Stats {
    /// The bucket of `v` in a histogram with these (increasing) edges: the number of edges <= v,
    /// so k edges give buckets 0...k; a missing value (NaN) is bucket k + 1. The one rule the
    /// monitor, the ledger's `buckets` and the cohort and site histograms share.
    package static func bucket(_ v: Double, edges: [Double]) -> Int {
        if v.isNaN { return edges.count + 1 }
        var lo = 0, hi = edges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if edges[mid] <= v { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Wilson score interval for `k` successes in `n` trials at 95% (z = 1.959964); nil for n = 0.
    package static func wilson(_ k: Int, _ n: Int, z: Double = 1.959963984540054) -> (rate: Double, low: Double, high: Double)? {
        guard n > 0 else { return nil }
        let nn = Double(n), p = Double(k) / nn, z2 = z * z
        let denom = 1 + z2 / nn
        let centre = (p + z2 / (2 * nn)) / denom
        let half = z * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot() / denom
        return (p, max(0, centre - half), min(1, centre + half))
    }

    /// Proportions with a small floor (0.5 pseudo-count per bucket, Laplace-style), so that an
    /// empty bucket gives a finite PSI.
    static func smoothed(_ counts: [Double]) -> [Double] {
        let total = counts.reduce(0, +) + 0.5 * Double(counts.count)
        return counts.map { ($0 + 0.5) / total }
    }

    /// Population stability index: sum over buckets of (p - q) ln(p / q), p observed, q reference.
    package static func psi(observed: [Double], reference: [Double]) -> Double {
        let p = smoothed(observed), q = smoothed(reference)
        return zip(p, q).reduce(0) { $0 + ($1.0 - $1.1) * log($1.0 / $1.1) }
    }

    /// Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint); no smoothing needed.
    package static func jensenShannon(observed: [Double], reference: [Double]) -> Double {
        let ps = observed.reduce(0, +), qs = reference.reduce(0, +)
        guard ps > 0, qs > 0 else { return 0 }
        var js = 0.0
        for (a, b) in zip(observed, reference) {
            let p = a / ps, q = b / qs, m = (p + q) / 2
            if p > 0 { js += 0.5 * p * log2(p / m) }
            if q > 0 { js += 0.5 * q * log2(q / m) }
        }
        return max(0, js)
    }
}
