#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The float32 tensor kernels that have a single implementation (no BLAS twin): pooling,
/// element-wise operators, softmax, broadcasting arithmetic, concatenation. Buffers in, buffers
/// out, sizes as plain integers; callers (the IR's executor) have checked every shape.
///
/// Numerical contract: element-wise kernels are one float32 operation per value (exact up to
/// the rounding of that operation, and of `expf`/`tanhf` for Sigmoid/Tanh/Softmax); reductions
/// (average pooling, global average pooling, the softmax denominator) sum in `Double` and round
/// once, so they can differ from onnxruntime's float32 sums by an ulp or two.
package enum TensorKernels {
    // MARK: - Pooling

    /// Max over each window's taps inside the input (padding never wins); a window with no tap
    /// inside gives -infinity. `g.inChannels == g.outChannels`.
    package static func maxPool2d(_ g: Conv2DGeometry, batch: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let planes = batch * g.inChannels
        let inPlane = g.inHeight * g.inWidth, outPlane = g.outPixels
        for p in 0..<planes {
            let xs = x + p * inPlane
            let ys = y + p * outPlane
            for oh in 0..<g.outHeight {
                for ow in 0..<g.outWidth {
                    var m = -Float.infinity
                    for i in 0..<g.kernelHeight {
                        let ih = g.inRow(oh, i)
                        guard ih >= 0, ih < g.inHeight else { continue }
                        for j in 0..<g.kernelWidth {
                            let iw = g.inColumn(ow, j)
                            guard iw >= 0, iw < g.inWidth else { continue }
                            let v = xs[ih * g.inWidth + iw]
                            if v > m || v.isNaN { m = v }
                        }
                    }
                    ys[oh * g.outWidth + ow] = m
                }
            }
        }
    }

    /// Mean of each window. The divisor is the number of taps inside the input, or with
    /// `countIncludePad` the number of taps inside the padded input (`-padTop ..< inHeight +
    /// padBottom`), as ONNX's reference; taps beyond the padding (ceil mode) never count.
    package static func averagePool2d(
        _ g: Conv2DGeometry, batch: Int, countIncludePad: Bool, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    ) {
        let planes = batch * g.inChannels
        let inPlane = g.inHeight * g.inWidth, outPlane = g.outPixels
        for p in 0..<planes {
            let xs = x + p * inPlane
            let ys = y + p * outPlane
            for oh in 0..<g.outHeight {
                for ow in 0..<g.outWidth {
                    var sum = 0.0
                    var inside = 0, padded = 0
                    for i in 0..<g.kernelHeight {
                        let ih = g.inRow(oh, i)
                        let rowInPad = ih >= -g.padTop && ih < g.inHeight + g.padBottom
                        let rowInside = ih >= 0 && ih < g.inHeight
                        for j in 0..<g.kernelWidth {
                            let iw = g.inColumn(ow, j)
                            if rowInPad && iw >= -g.padLeft && iw < g.inWidth + g.padRight { padded += 1 }
                            guard rowInside, iw >= 0, iw < g.inWidth else { continue }
                            inside += 1
                            sum += Double(xs[ih * g.inWidth + iw])
                        }
                    }
                    let count = countIncludePad ? padded : inside
                    ys[oh * g.outWidth + ow] = count > 0 ? Float(sum / Double(count)) : 0
                }
            }
        }
    }

    /// y[p] = mean of plane p of `x` (`planes` planes of `size` values), summed in `Double`.
    package static func globalAveragePool(planes: Int, size: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for p in 0..<planes {
            let xs = x + p * size
            var sum = 0.0
            for i in 0..<size { sum += Double(xs[i]) }
            y[p] = Float(sum / Double(size))
        }
    }

    // MARK: - Element-wise

    /// An activation applied value by value (also fused into a convolution's output).
    package enum Unary: Sendable, Equatable {
        case relu
        case leakyRelu(alpha: Float)
        /// min(max(x, lower), upper); NaN stays NaN.
        case clip(lower: Float, upper: Float)
        /// 1 / (1 + expf(-x)).
        case sigmoid
        case tanh
    }

    /// y[i] = f(x[i]) for `count` values; `x` may be `y`.
    package static func apply(_ f: Unary, count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        switch f {
        case .relu:
            for i in 0..<count { let v = x[i]; y[i] = v < 0 ? 0 : v }
        case .leakyRelu(let alpha):
            for i in 0..<count { let v = x[i]; y[i] = v < 0 ? v * alpha : v }
        case .clip(let lower, let upper):
            // min(max(x, lower), upper), so lower > upper gives upper (as NumPy and ONNX).
            for i in 0..<count {
                let v = x[i]
                let t = v < lower ? lower : v
                y[i] = t > upper ? upper : t
            }
        case .sigmoid:
            for i in 0..<count { y[i] = 1 / (1 + expf(-x[i])) }
        case .tanh:
            for i in 0..<count { y[i] = tanhf(x[i]) }
        }
    }

    /// Softmax along the middle axis of `[outer, axis, inner]`: exp(x - max) / sum, the sum in
    /// `Double`.
    package static func softmax(outer: Int, axis: Int, inner: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for o in 0..<outer {
            for i in 0..<inner {
                let xs = x + o * axis * inner + i
                let ys = y + o * axis * inner + i
                var m = -Float.infinity
                for a in 0..<axis where xs[a * inner] > m { m = xs[a * inner] }
                var sum = 0.0
                for a in 0..<axis {
                    let e = expf(xs[a * inner] - m)
                    ys[a * inner] = e
                    sum += Double(e)
                }
                let s = Float(sum)
                for a in 0..<axis { ys[a * inner] = ys[a * inner] / s }
            }
        }
    }

    /// y[n, c, i] = x[n, c, i] * scale[c] + shift[c] over `[batch, channels, inner]` (a batch
    /// normalization that could not be folded into a convolution).
    package static func channelAffine(
        batch: Int, channels: Int, inner: Int, x: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    ) {
        for n in 0..<batch {
            for c in 0..<channels {
                let off = (n * channels + c) * inner
                let s = scale[c], b = shift[c]
                for i in 0..<inner { y[off + i] = x[off + i] * s + b }
            }
        }
    }

    // MARK: - Broadcasting arithmetic

    package enum Binary: Sendable, Equatable {
        case add, mul
    }

    /// y = a (op) b with NumPy broadcasting. `yShape` is the broadcast shape of `aShape` and
    /// `bShape` (the caller checked it); shapes are right-aligned.
    package static func broadcast(
        _ op: Binary, a: UnsafePointer<Float>, aShape: [Int], b: UnsafePointer<Float>, bShape: [Int],
        y: UnsafeMutablePointer<Float>, yShape: [Int]
    ) {
        let count = yShape.reduce(1, *)
        guard count > 0 else { return }
        let aCount = aShape.reduce(1, *), bCount = bShape.reduce(1, *)
        if aCount == count && bCount == count {
            binary(op, count: count, a: a, aStride: 1, b: b, bStride: 1, y: y)
            return
        }
        if bCount == 1 && aCount == count {
            binary(op, count: count, a: a, aStride: 1, b: b, bStride: 0, y: y)
            return
        }
        if aCount == 1 && bCount == count {
            binary(op, count: count, a: a, aStride: 0, b: b, bStride: 1, y: y)
            return
        }
        // General case: collapse to rank R, element strides (0 where broadcast), then walk all
        // but the last axis with an odometer and run the last axis as a strided loop.
        let rank = yShape.count
        func strides(_ shape: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            var s = [Int](repeating: 0, count: rank)
            var acc = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                s[d] = padded[d] == 1 ? 0 : acc
                acc *= padded[d]
            }
            return s
        }
        let sa = strides(aShape), sb = strides(bShape)
        let last = yShape[rank - 1]
        let outer = count / last
        var index = [Int](repeating: 0, count: rank)
        var offA = 0, offB = 0
        for o in 0..<outer {
            binary(op, count: last, a: a + offA, aStride: sa[rank - 1], b: b + offB, bStride: sb[rank - 1], y: y + o * last)
            // Advance the odometer over axes rank-2 ... 0.
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                offA += sa[d]
                offB += sb[d]
                if index[d] < yShape[d] { break }
                offA -= sa[d] * yShape[d]
                offB -= sb[d] * yShape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    @inline(__always)
    private static func binary(
        _ op: Binary, count: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
        y: UnsafeMutablePointer<Float>
    ) {
        switch op {
        case .add:
            if aStride == 1 && bStride == 1 {
                for i in 0..<count { y[i] = a[i] + b[i] }
            } else {
                for i in 0..<count { y[i] = a[i * aStride] + b[i * bStride] }
            }
        case .mul:
            if aStride == 1 && bStride == 1 {
                for i in 0..<count { y[i] = a[i] * b[i] }
            } else {
                for i in 0..<count { y[i] = a[i * aStride] * b[i * bStride] }
            }
        }
    }

    // MARK: - Layout

    /// Concatenation along an axis: `outer` blocks, input k contributing `parts[k].count` values
    /// per block (its axis length times the inner size).
    package static func concat(
        outer: Int, parts: [(data: UnsafePointer<Float>, count: Int)], y: UnsafeMutablePointer<Float>
    ) {
        let block = parts.reduce(0) { $0 + $1.count }
        for o in 0..<outer {
            var dst = y + o * block
            for p in parts {
                dst.update(from: p.data + o * p.count, count: p.count)
                dst += p.count
            }
        }
    }
}
