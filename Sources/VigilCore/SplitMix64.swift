/// SplitMix64 (Steele, Lea and Flood 2014): a small, fast, seedable generator. Every seeded
/// computation in Vigil (bootstrap replicates) derives its stream from a user seed, so results
/// are the same on every machine and whatever the thread count.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    package var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 output function, a bijective 64-bit finaliser.
    package static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform index in `0..<n` (the high word of a 64x64-bit product; bias < n / 2^64).
    package mutating func index(below n: Int) -> Int {
        Int(UInt64(n).multipliedFullWidth(by: next()).high)
    }

    /// Uniform in [0, 1) (53 random bits).
    package mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// `n` floats uniform in [-scale, scale) (synthetic inputs for benchmarks and tests).
    package mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float(unit() * 2 - 1) * scale } }
}

