package import VigilCore

/// Percentile bootstrap intervals.
package enum Bootstrap {
    /// The `q` quantile of sorted values with linear interpolation between order statistics
    /// (numpy's default `linear` method).
    package static func quantile(sorted v: [Double], _ q: Double) -> Double {
        precondition(!v.isEmpty)
        let h = Double(v.count - 1) * q
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, v.count - 1)
        return v[lo] + (h - Double(lo)) * (v[hi] - v[lo])
    }

    /// The generator for replicate `r` of a run seeded with `seed`: independent of how
    /// replicates are spread over threads.
    package static func generator(seed: UInt64, replicate r: Int) -> SplitMix64 {
        SplitMix64(seed: SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(r) &+ 1)))
    }
}

/// A confidence interval from bootstrap replicates; `defined` counts the replicates where the
/// statistic was defined (a replicate of a small group may have no positives).
package struct Interval: Sendable, Equatable {
    package let lower: Double
    package let upper: Double
    package let defined: Int
    package let replicates: Int

    package init(lower: Double, upper: Double, defined: Int, replicates: Int) {
        self.lower = lower
        self.upper = upper
        self.defined = defined
        self.replicates = replicates
    }
}
