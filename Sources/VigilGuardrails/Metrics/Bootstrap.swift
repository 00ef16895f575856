/// SplitMix64 (Steele, Lea and Flood 2014): a small, fast, seedable generator. Every seeded
/// computation in Vigil (bootstrap replicates) derives its stream from a user seed, so results
/// are the same on every machine and whatever the thread count.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 output function, a bijective 64-bit finaliser.
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform index in `0..<n` (the high word of a 64x64-bit product; bias < n / 2^64).
    public mutating func index(below n: Int) -> Int {
        Int(UInt64(n).multipliedFullWidth(by: next()).high)
    }
}

/// Percentile bootstrap intervals.
public enum Bootstrap {
    /// The `q` quantile of sorted values with linear interpolation between order statistics
    /// (numpy's default `linear` method).
    public static func quantile(sorted v: [Double], _ q: Double) -> Double {
        precondition(!v.isEmpty)
        let h = Double(v.count - 1) * q
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, v.count - 1)
        return v[lo] + (h - Double(lo)) * (v[hi] - v[lo])
    }

    /// The generator for replicate `r` of a run seeded with `seed`: independent of how
    /// replicates are spread over threads.
    public static func generator(seed: UInt64, replicate r: Int) -> SplitMix64 {
        SplitMix64(seed: SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(r) &+ 1)))
    }
}

/// A confidence interval from bootstrap replicates; `defined` counts the replicates where the
/// statistic was defined (a replicate of a small group may have no positives).
public struct Interval: Sendable, Equatable {
    public let lower: Double
    public let upper: Double
    public let defined: Int
    public let replicates: Int
}
