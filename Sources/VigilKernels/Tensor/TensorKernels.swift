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
    /// inside gives -infinity. A NaN input does not propagate (comparisons skip it).
    /// `g.inChannels == g.outChannels`.
    package static func maxPool2d(_ g: Conv2DGeometry, batch: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let planes = batch * g.inChannels
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        if g.kernelHeight == 2 && g.kernelWidth == 2 && g.strideHeight == 2 && g.strideWidth == 2
            && g.dilationHeight == 1 && g.dilationWidth == 1 && g.padTop == 0 && g.padLeft == 0
            && 2 * oh <= h && 2 * ow <= w {
            // The common 2x2 / stride 2 pool: every window lies inside the input.
            for p in 0..<planes {
                let xs = x + p * h * w, ys = y + p * oh * ow
                for r in 0..<oh {
                    let r0 = xs + 2 * r * w, r1 = r0 + w, yr = ys + r * ow
                    for q in 0..<ow {
                        let a = r0[2 * q] > r0[2 * q + 1] ? r0[2 * q] : r0[2 * q + 1]
                        let b = r1[2 * q] > r1[2 * q + 1] ? r1[2 * q] : r1[2 * q + 1]
                        yr[q] = a > b ? a : b
                    }
                }
            }
            return
        }
        let rows = windows(g, vertical: true)
        let sw = g.strideWidth, dh = g.dilationHeight
        let columnTaps = columnTaps(g)
        rows.withUnsafeBufferPointer { rows in
            for p in 0..<planes {
                let xs = x + p * h * w, ys = y + p * oh * ow
                for r in 0..<oh {
                    // A row of outputs at once: each output's max over its taps inside the input.
                    let out = ys + r * ow
                    for q in 0..<ow { out[q] = -Float.infinity }
                    let (ilo, ihi, rowBase) = rows[r]
                    var i = ilo
                    while i < ihi {
                        let row = xs + (rowBase + i * dh) * w
                        for (lo, hi, base) in columnTaps where hi > lo {
                            let src = row + base
                            if sw == 1 {
                                for q in lo..<hi { let v = src[q]; if v > out[q] { out[q] = v } }
                            } else {
                                for q in lo..<hi { let v = src[q * sw]; if v > out[q] { out[q] = v } }
                            }
                        }
                        i += 1
                    }
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
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let rows = windows(g, vertical: true)
        let divisors = averagePoolDivisors(g, countIncludePad: countIncludePad)
        let sw = g.strideWidth, dh = g.dilationHeight
        // Sums run across a row of outputs at once (independent accumulators, which vectorise),
        // each output still adding its taps in (row, column) order.
        let columnTaps = columnTaps(g)
        var accumulator = [Double](repeating: 0, count: ow)
        rows.withUnsafeBufferPointer { rows in
            divisors.withUnsafeBufferPointer { div in
                accumulator.withUnsafeMutableBufferPointer { acc in
                    for p in 0..<planes {
                        let xs = x + p * h * w, ys = y + p * oh * ow
                        for r in 0..<oh {
                            let (ilo, ihi, rowBase) = rows[r]
                            for q in 0..<ow { acc[q] = 0 }
                            var i = ilo
                            while i < ihi {
                                let row = xs + (rowBase + i * dh) * w
                                for (lo, hi, base) in columnTaps where hi > lo {
                                    let src = row + base
                                    if sw == 1 {
                                        for q in lo..<hi { acc[q] += Double(src[q]) }
                                    } else {
                                        for q in lo..<hi { acc[q] += Double(src[q * sw]) }
                                    }
                                }
                                i += 1
                            }
                            let d = div.baseAddress! + r * ow
                            // sum * (1 / count) in Double: within an ulp of sum / count in
                            // Double, so the float32 result is the same but for ties.
                            for q in 0..<ow { ys[r * ow + q] = Float(acc[q] * d[q]) }
                        }
                    }
                }
            }
        }
    }

    /// 1 / divisor of each output of an average pool (`outHeight x outWidth`), the same for every
    /// plane: 1 / (taps inside the input), or with `countIncludePad` 1 / (taps inside the padded
    /// input); 0 for a window with no tap.
    package static func averagePoolDivisors(_ g: Conv2DGeometry, countIncludePad: Bool) -> [Double] {
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let rows = windows(g, vertical: true), cols = windows(g, vertical: false)
        // Taps inside the padded extent, per output row and column.
        let paddedRows = (0..<oh).map { r in
            Conv2DGeometry.taps(base: r * g.strideHeight, step: g.dilationHeight, size: h + g.padTop + g.padBottom, count: g.kernelHeight)
        }
        let paddedCols = (0..<ow).map { q in
            Conv2DGeometry.taps(base: q * g.strideWidth, step: g.dilationWidth, size: w + g.padLeft + g.padRight, count: g.kernelWidth)
        }
        var divisors = [Double](repeating: 0, count: oh * ow)
        for r in 0..<oh {
            for q in 0..<ow {
                let count = countIncludePad
                    ? (paddedRows[r].1 - paddedRows[r].0) * (paddedCols[q].1 - paddedCols[q].0)
                    : (rows[r].1 - rows[r].0) * (cols[q].1 - cols[q].0)
                divisors[r * ow + q] = count > 0 ? 1 / Double(count) : 0
            }
        }
        return divisors
    }

    /// For each kernel column j: the outputs `lo..<hi` whose tap j lies inside the input, and tap
    /// j's column offset (`j * dilation - padLeft`), for the row-at-a-time pooling loops.
    static func columnTaps(_ g: Conv2DGeometry) -> [(Int, Int, Int)] {
        (0..<g.kernelWidth).map { j -> (Int, Int, Int) in
            let base = j * g.dilationWidth - g.padLeft
            let (lo, hi) = Conv2DGeometry.taps(base: base, step: g.strideWidth, size: g.inWidth, count: g.outWidth)
            return (lo, hi, base)
        }
    }

    /// For each output row (or column): the kernel taps `lo..<hi` that fall inside the input, and
    /// the input index of tap 0 (`out * stride - pad`).
    static func windows(_ g: Conv2DGeometry, vertical: Bool) -> [(Int, Int, Int)] {
        let n = vertical ? g.outHeight : g.outWidth
        let stride = vertical ? g.strideHeight : g.strideWidth
        let pad = vertical ? g.padTop : g.padLeft
        let step = vertical ? g.dilationHeight : g.dilationWidth
        let size = vertical ? g.inHeight : g.inWidth
        let k = vertical ? g.kernelHeight : g.kernelWidth
        return (0..<n).map { o in
            let base = o * stride - pad
            let (lo, hi) = Conv2DGeometry.taps(base: base, step: step, size: size, count: k)
            return (lo, hi, base)
        }
    }

    /// y[p] = mean of plane p of `x` (`planes` planes of `size` values), summed in `Double`.
    package static func globalAveragePool(planes: Int, size: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for p in 0..<planes {
            let xs = x + p * size
            // Four running sums (every fourth value), added at the end: one dependent chain of
            // additions per value was the loop's whole cost (4.1% of retinopathy's batch time,
            // 1.6% after). Still a Double sum of float32 values, rounded once.
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            var i = 0
            while i + 4 <= size {
                s0 += Double(xs[i]); s1 += Double(xs[i + 1]); s2 += Double(xs[i + 2]); s3 += Double(xs[i + 3])
                i += 4
            }
            while i < size { s0 += Double(xs[i]); i += 1 }
            y[p] = Float(((s0 + s1) + (s2 + s3)) / Double(size))
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

    /// y[c, p] = f(y[c, p] + bias[c]) over `channels` planes of `pixels` values: a convolution's
    /// epilogue, one pass while the plane is in cache. No bias and no activation is a no-op.
    package static func biasActivation(
        channels: Int, pixels: Int, bias: UnsafePointer<Float>?, activation: Unary?, y: UnsafeMutablePointer<Float>
    ) {
        guard bias != nil || activation != nil else { return }
        for c in 0..<channels {
            let plane = y + c * pixels
            let b = bias?[c] ?? 0
            switch activation {
            case nil:
                for p in 0..<pixels { plane[p] = plane[p] + b }
            case .relu?:
                for p in 0..<pixels { let v = plane[p] + b; plane[p] = v < 0 ? 0 : v }
            case .leakyRelu(let alpha)?:
                for p in 0..<pixels { let v = plane[p] + b; plane[p] = v < 0 ? v * alpha : v }
            case .clip(let lower, let upper)?:
                for p in 0..<pixels {
                    let v = plane[p] + b
                    let t = v < lower ? lower : v
                    plane[p] = t > upper ? upper : t
                }
            case let f?:
                if bias != nil { for p in 0..<pixels { plane[p] = plane[p] + b } }
                apply(f, count: pixels, x: plane, y: plane)
            }
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
        let sa = broadcastStrides(aShape, rank: rank), sb = broadcastStrides(bShape, rank: rank)
        let last = yShape[rank - 1]
        let outer = count / last
        var index = [Int](repeating: 0, count: rank)
        var offA = 0, offB = 0
        for o in 0..<outer {
            binary(op, count: last, a: a + offA, aStride: sa[rank - 1], b: b + offB, bStride: sb[rank - 1], y: y + o * last)
            // Advance the odometer over axes rank-2 ... 0.
            advance(&index, &offA, &offB, strides: sa, sb, shape: yShape, fromAxis: rank - 2)
        }
    }

    /// One step of an odometer over `shape` (axes `fromAxis` down to 0, the last fastest),
    /// carrying two operands' offsets along with their broadcast strides.
    @inline(__always)
    package static func advance(
        _ index: inout [Int], _ offA: inout Int, _ offB: inout Int, strides sa: [Int], _ sb: [Int], shape: [Int],
        fromAxis: Int
    ) {
        var d = fromAxis
        while d >= 0 {
            index[d] += 1
            offA += sa[d]
            offB += sb[d]
            if index[d] < shape[d] { return }
            offA -= sa[d] * shape[d]
            offB -= sb[d] * shape[d]
            index[d] = 0
            d -= 1
        }
    }

    /// Element strides of `shape` right-aligned to `rank` axes, 0 along every axis it is
    /// broadcast over (size 1 or absent): the offset of an output index in the operand.
    package static func broadcastStrides(_ shape: [Int], rank: Int) -> [Int] {
        let padded = [Int](repeating: 1, count: rank - shape.count) + shape
        var s = [Int](repeating: 0, count: rank)
        var acc = 1
        for d in stride(from: rank - 1, through: 0, by: -1) {
            s[d] = padded[d] == 1 ? 0 : acc
            acc *= padded[d]
        }
        return s
    }

    /// The matrix offsets (in matrices, not floats) of A and B for each batch of a NumPy matmul
    /// whose leading axes `a` and `b` broadcast against each other, in output order.
    package static func matMulBatchOffsets(leadingA a: [Int], leadingB b: [Int]) -> [(a: Int, b: Int)] {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        let lead = zip(pa, pb).map { max($0, $1) }
        return (0..<lead.reduce(1, *)).map { bi in
            var rem = bi, offA = 0, offB = 0, strideA = 1, strideB = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                let idx = rem % lead[d]
                rem /= lead[d]
                if pa[d] != 1 { offA += idx * strideA }
                if pb[d] != 1 { offB += idx * strideB }
                strideA *= pa[d]
                strideB *= pb[d]
            }
            return (offA, offB)
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
