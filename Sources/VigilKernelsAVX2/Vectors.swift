/// Small vector helpers shared by the kernels of this module (compiled for AVX2 + FMA).

/// The activation a kernel applies to its output before storing it.
package enum FusedActivation: Sendable, Equatable {
    case none
    case relu
    case leakyRelu(alpha: Float)
    /// min(max(x, lower), upper); NaN stays NaN.
    case clip(lower: Float, upper: Float)

    /// v[i] = f(v[i] + bias) for `count` vectors of 8 at `v`, as `TensorKernels.apply` in
    /// VigilKernels (`v < 0 ? 0 : v` keeps -0 and NaN). One branch per call, not per vector.
    @inline(__always)
    func apply(_ v: UnsafeMutablePointer<Float>, count: Int, bias: SIMD8<Float>) {
        switch self {
        case .none:
            for i in 0..<count { save(load(v + i &* 8) + bias, v + i &* 8) }
        case .relu:
            for i in 0..<count {
                let t = load(v + i &* 8) + bias
                save(t.replacing(with: 0, where: t .< 0), v + i &* 8)
            }
        case .leakyRelu(let alpha):
            for i in 0..<count {
                let t = load(v + i &* 8) + bias
                save(t.replacing(with: t * alpha, where: t .< 0), v + i &* 8)
            }
        case .clip(let lower, let upper):
            for i in 0..<count {
                let t = load(v + i &* 8) + bias
                let c = t.replacing(with: lower, where: t .< lower)
                save(c.replacing(with: upper, where: c .> upper), v + i &* 8)
            }
        }
    }
}

typealias Vectors8 = (
    SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>
)

/// r[i][j] ↔ r[j][i]: three rounds of even/odd deinterleaving of consecutive pairs (vector
/// shuffles), instead of 64 scalar moves.
@inline(__always)
func transpose(_ r: inout Vectors8) {
    for _ in 0..<3 {
        let s0 = SIMD16(lowHalf: r.0, highHalf: r.1), s1 = SIMD16(lowHalf: r.2, highHalf: r.3)
        let s2 = SIMD16(lowHalf: r.4, highHalf: r.5), s3 = SIMD16(lowHalf: r.6, highHalf: r.7)
        r = (s0.evenHalf, s1.evenHalf, s2.evenHalf, s3.evenHalf, s0.oddHalf, s1.oddHalf, s2.oddHalf, s3.oddHalf)
    }
}

@inline(__always)
func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func save(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
