#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Backward kernels: for each forward kernel of `TensorKernels` and `BLAS.conv2d`, the gradient
/// of a scalar with respect to the kernel's input, given its gradient with respect to the
/// output (`gy`). Every kernel *adds* into `gx`, so a tensor read by several nodes (a residual
/// branch) collects the sum of its consumers' gradients; callers zero `gx` first.
///
/// Numerical contract: float32 like the forward pass, one float32 multiply-add per tap; the
/// convolution's input gradient goes through `cblas_sgemm` (Wᵀ · gy, then the col2im scatter).
/// These are exact derivatives of the forward kernels' piecewise-smooth functions; at a kink
/// (ReLU at 0, a tie in a max pool, Clip at a bound) they take the one-sided derivative stated
/// on each kernel.
extension TensorKernels {
    // MARK: - Element-wise

    /// gx += gy · f′(x), where `x` is the activation's input. ReLU passes where x > 0; LeakyReLU
    /// passes 1 where x >= 0 and `alpha` below; Clip passes strictly inside (lower, upper).
    package static func activationBackward(
        _ f: Unary, count: Int, x: UnsafePointer<Float>, gy: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>
    ) {
        switch f {
        case .relu:
            for i in 0..<count where x[i] > 0 { gx[i] += gy[i] }
        case .leakyRelu(let alpha):
            for i in 0..<count { gx[i] += x[i] < 0 ? gy[i] * alpha : gy[i] }
        case .clip(let lower, let upper):
            for i in 0..<count where x[i] > lower && x[i] < upper { gx[i] += gy[i] }
        case .sigmoid:
            for i in 0..<count {
                let s = 1 / (1 + expf(-x[i]))
                gx[i] += gy[i] * (s * (1 - s))
            }
        case .tanh:
            for i in 0..<count {
                let t = tanhf(x[i])
                gx[i] += gy[i] * (1 - t * t)
            }
        }
    }

    /// Softmax along the middle axis of `[outer, axis, inner]`, from its output `y`:
    /// gx += y ⊙ (gy − Σₐ gy·y), the sum in `Double`.
    package static func softmaxBackward(
        outer: Int, axis: Int, inner: Int, y: UnsafePointer<Float>, gy: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>
    ) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * axis * inner + i
                var dot = 0.0
                for a in 0..<axis { dot += Double(gy[base + a * inner]) * Double(y[base + a * inner]) }
                let d = Float(dot)
                for a in 0..<axis {
                    let k = base + a * inner
                    gx[k] += y[k] * (gy[k] - d)
                }
            }
        }
    }

    /// gx[n, c, i] += gy[n, c, i] · scale[c] (the backward of `channelAffine`).
    package static func channelAffineBackward(
        batch: Int, channels: Int, inner: Int, scale: UnsafePointer<Float>, gy: UnsafePointer<Float>,
        gx: UnsafeMutablePointer<Float>
    ) {
        for n in 0..<batch {
            for c in 0..<channels {
                let off = (n * channels + c) * inner
                let s = scale[c]
                for i in 0..<inner { gx[off + i] += gy[off + i] * s }
            }
        }
    }

    /// The backward of `broadcast(op, a, b)` with respect to `a`: ga[j] += Σ over the outputs `j`
    /// broadcasts to of gy (add) or gy · b (mul). `other` is b (read only for mul).
    package static func broadcastBackward(
        _ op: Binary, gy: UnsafePointer<Float>, yShape: [Int], aShape: [Int], other b: UnsafePointer<Float>,
        otherShape bShape: [Int], ga: UnsafeMutablePointer<Float>
    ) {
        let count = yShape.reduce(1, *)
        guard count > 0 else { return }
        let rank = yShape.count
        let sa = broadcastStrides(aShape, rank: rank), sb = broadcastStrides(bShape, rank: rank)
        var index = [Int](repeating: 0, count: rank)
        var offA = 0, offB = 0
        for e in 0..<count {
            ga[offA] += op == .mul ? gy[e] * b[offB] : gy[e]
            advance(&index, &offA, &offB, strides: sa, sb, shape: yShape, fromAxis: rank - 1)
        }
    }

    /// The backward of `concat`: part k's gradient gets its slice of each of the `outer` blocks
    /// of `gy` (parts with a nil gradient, constants, are skipped).
    package static func concatBackward(
        outer: Int, parts: [(grad: UnsafeMutablePointer<Float>?, count: Int)], gy: UnsafePointer<Float>
    ) {
        let block = parts.reduce(0) { $0 + $1.count }
        for o in 0..<outer {
            var src = gy + o * block
            for p in parts {
                if let g = p.grad {
                    let dst = g + o * p.count
                    for i in 0..<p.count { dst[i] += src[i] }
                }
                src += p.count
            }
        }
    }

    // MARK: - Pooling

    /// Each output's gradient goes to the first tap, in (kernel row, kernel column) order, whose
    /// input equals the window's max (`y`); a window with no tap inside the input passes nothing.
    package static func maxPool2dBackward(
        _ g: Conv2DGeometry, batch: Int, x: UnsafePointer<Float>, y: UnsafePointer<Float>, gy: UnsafePointer<Float>,
        gx: UnsafeMutablePointer<Float>
    ) {
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let rows = windows(g, vertical: true), cols = windows(g, vertical: false)
        for p in 0..<(batch * g.inChannels) {
            let xs = x + p * h * w, gxs = gx + p * h * w
            let ys = y + p * oh * ow, gys = gy + p * oh * ow
            for r in 0..<oh {
                let (ilo, ihi, rowBase) = rows[r]
                for q in 0..<ow {
                    let (jlo, jhi, colBase) = cols[q]
                    let target = ys[r * ow + q]
                    var found = false
                    var i = ilo
                    while i < ihi && !found {
                        let row = (rowBase + i * g.dilationHeight) * w
                        var j = jlo
                        while j < jhi {
                            let k = row + colBase + j * g.dilationWidth
                            if xs[k] == target {
                                gxs[k] += gys[r * ow + q]
                                found = true
                                break
                            }
                            j += 1
                        }
                        i += 1
                    }
                }
            }
        }
    }

    /// Each output's gradient, times its 1 / divisor (as `averagePool2d`), to each of its taps
    /// inside the input.
    package static func averagePool2dBackward(
        _ g: Conv2DGeometry, batch: Int, countIncludePad: Bool, gy: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>
    ) {
        let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let rows = windows(g, vertical: true), cols = windows(g, vertical: false)
        let divisors = averagePoolDivisors(g, countIncludePad: countIncludePad)
        for p in 0..<(batch * g.inChannels) {
            let gxs = gx + p * h * w, gys = gy + p * oh * ow
            for r in 0..<oh {
                let (ilo, ihi, rowBase) = rows[r]
                for q in 0..<ow {
                    let (jlo, jhi, colBase) = cols[q]
                    let v = Float(Double(gys[r * ow + q]) * divisors[r * ow + q])
                    for i in ilo..<ihi {
                        let row = gxs + (rowBase + i * g.dilationHeight) * w + colBase
                        for j in jlo..<jhi { row[j * g.dilationWidth] += v }
                    }
                }
            }
        }
    }

    /// gx[p, i] += gy[p] / size over `planes` planes of `size` values.
    package static func globalAveragePoolBackward(planes: Int, size: Int, gy: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>) {
        let inv = 1 / Double(size)
        for p in 0..<planes {
            let v = Float(Double(gy[p]) * inv)
            let gxs = gx + p * size
            for i in 0..<size { gxs[i] += v }
        }
    }

    // MARK: - Convolution

    /// Adds an im2col matrix back onto the image it was read from: the transpose of
    /// `BLAS.im2col`. Each `(c, i, j)` row's value for output pixel (oh, ow) goes to the input
    /// position that tap read; padding taps are dropped.
    package static func col2imAdd(_ g: Conv2DGeometry, col: UnsafePointer<Float>, ldCol: Int, gx: UnsafeMutablePointer<Float>) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, wd = g.inWidth, sw = g.strideWidth
        var r = 0
        for c in 0..<g.inChannels {
            let gxc = gx + c * h * wd
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let row = col + r * ldCol
                    r += 1
                    let base = -g.padLeft + j * g.dilationWidth
                    let (lo, hi) = Conv2DGeometry.taps(base: base, step: sw, size: wd, count: ow)
                    guard hi > lo else { continue }
                    for y in 0..<oh {
                        let ih = g.inRow(y, i)
                        guard ih >= 0, ih < h else { continue }
                        let dst = gxc + ih * wd + base
                        let src = row + y * ow
                        if sw == 1 {
                            for q in lo..<hi { dst[q] += src[q] }
                        } else {
                            for q in lo..<hi { dst[q * sw] += src[q] }
                        }
                    }
                }
            }
        }
    }

    /// Floats of scratch `conv2dBackwardInput` needs (one sample's im2col matrix).
    package static func conv2dBackwardScratchCount(_ g: Conv2DGeometry) -> Int {
        g.isPointwise ? 0 : g.inChannels * g.kernelHeight * g.kernelWidth * g.outPixels
    }
}
