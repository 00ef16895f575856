internal import CBLAS

/// Convolution lowered to `cblas_sgemm` (im2col), and the general single-precision GEMM.
///
/// Numerical contract: rounding (equal to the reference up to the rounding of reordered sums, not bit
/// for bit). OpenBLAS accumulates the K = channels x kernel
/// products in float32 in its own blocked order, so results differ from the reference (a `Double`
/// sum rounded once) by a few float ulps of the sum of |w * x|; onnxruntime's MLAS rounds the same
/// way, differently. Depthwise convolutions use a direct float32 loop (taps summed in kernel order).
extension BLAS {
    /// c = alpha * op(a) * op(b) + beta * c, row-major, op(a) `m x k`, op(b) `k x n`.
    package static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // C = beta * C (BLAS would too, but some builds reject lda = 0).
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How a convolution is lowered.
    package enum ConvLowering: String, Sendable, CaseIterable {
        /// One im2col matrix and one GEMM per sample and group: `[Cout/g, K] x [K, OH*OW]`.
        case perSample
        /// One im2col matrix for the whole batch `[K, B*OH*OW]`, one GEMM, then a scatter back to
        /// NCHW: fewer, larger GEMMs for small feature maps (groups == 1 only).
        case batched
        /// Direct loops for depthwise convolutions (one input channel per group).
        case depthwise

        /// The lowering Vigil picks: depthwise when each group reads one channel, per sample
        /// otherwise. Measured on the retinopathy model's shapes (28x28 to 7x7, batch 64, one
        /// thread): per sample 91-92 µs per image, batched 97-99 µs (the scatter and a working
        /// set out of L2 cost more than the wider GEMMs gain), at chunk sizes 4 to 64 alike.
        package static func choose(_ g: Conv2DGeometry, batch: Int) -> ConvLowering {
            if g.groups > 1 && g.inChannelsPerGroup == 1 { return .depthwise }
            return .perSample
        }

        /// `requested` where it applies to `g`, else the automatic choice.
        package static func effective(_ requested: ConvLowering?, _ g: Conv2DGeometry, batch: Int) -> ConvLowering {
            switch requested {
            case .batched? where g.groups == 1: return .batched
            case .depthwise? where g.groups > 1 && g.inChannelsPerGroup == 1: return .depthwise
            case .perSample?: return .perSample
            default: return choose(g, batch: batch)
            }
        }
    }

    /// Floats of scratch `conv2d` needs for `batch` samples with `lowering`.
    package static func conv2dScratchCount(_ g: Conv2DGeometry, batch: Int, lowering: ConvLowering? = nil) -> Int {
        let rows = g.inChannels * g.kernelHeight * g.kernelWidth
        switch ConvLowering.effective(lowering, g, batch: batch) {
        case .depthwise: return 0
        case .perSample: return g.isPointwise ? 0 : rows * g.outPixels
        case .batched: return (rows + g.outChannels) * batch * g.outPixels
        }
    }

    /// y = f(conv(x, w) + bias) over `batch` NCHW samples (weights `[Cout, Cin/groups, kh, kw]`,
    /// `f` an optional fused activation), using `scratch` (at least `conv2dScratchCount` floats).
    package static func conv2d(
        _ g: Conv2DGeometry, batch: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, activation: TensorKernels.Unary? = nil, y: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, lowering: ConvLowering? = nil
    ) {
        guard batch > 0 else { return }
        switch ConvLowering.effective(lowering, g, batch: batch) {
        case .depthwise:
            depthwiseConv2d(g, batch: batch, x: x, w: w, bias: bias, y: y)
            TensorKernels.biasActivation(channels: batch * g.outChannels, pixels: g.outPixels, bias: nil, activation: activation, y: y)
        case .perSample:
            let pixels = g.outPixels, k = g.patchCount, coutG = g.outChannelsPerGroup
            for n in 0..<batch {
                let xs = x + n * g.inputCount
                let ys = y + n * g.outputCount
                let col: UnsafePointer<Float>
                if g.isPointwise {
                    col = xs
                } else {
                    im2col(g, x: xs, col: scratch, ldCol: pixels)
                    col = UnsafePointer(scratch)
                }
                // The output starts as the bias and the GEMM adds onto it (beta 1): OpenBLAS
                // then skips its own pass that zeroes C for beta 0, and no pass adds the bias
                // afterwards (measured on retinopathy at batch 64: the beta pass was 6.6% of
                // the time).
                for co in 0..<g.outChannels { (ys + co * pixels).update(repeating: bias?[co] ?? 0, count: pixels) }
                for group in 0..<g.groups {
                    sgemm(
                        transA: false, transB: false, m: coutG, n: pixels, k: k, alpha: 1,
                        a: w + group * coutG * k, lda: k, b: col + group * k * pixels, ldb: pixels,
                        beta: 1, c: ys + group * coutG * pixels, ldc: pixels)
                }
                // The activation in one pass over this sample's output, still in cache.
                TensorKernels.biasActivation(channels: g.outChannels, pixels: pixels, bias: nil, activation: activation, y: ys)
            }
        case .batched:
            let pixels = g.outPixels, k = g.patchCount, wide = batch * pixels
            let col = scratch
            let out = scratch + k * wide
            for n in 0..<batch {
                let xs = x + n * g.inputCount
                if g.isPointwise {
                    for c in 0..<g.inChannels {
                        (col + c * wide + n * pixels).update(from: xs + c * pixels, count: pixels)
                    }
                } else {
                    im2col(g, x: xs, col: col + n * pixels, ldCol: wide)
                }
            }
            sgemm(
                transA: false, transB: false, m: g.outChannels, n: wide, k: k, alpha: 1,
                a: w, lda: k, b: col, ldb: wide, beta: 0, c: out, ldc: wide)
            for n in 0..<batch {
                let ys = y + n * g.outputCount
                for co in 0..<g.outChannels {
                    (ys + co * pixels).update(from: out + co * wide + n * pixels, count: pixels)
                }
                TensorKernels.biasActivation(channels: g.outChannels, pixels: pixels, bias: bias, activation: activation, y: ys)
            }
        }
    }

    /// Writes the patches of one sample: row `(c, i, j)` of `col` (stride `ldCol`) holds, for each
    /// output pixel `oh * outWidth + ow`, the input value under kernel tap (i, j) of channel c, or
    /// zero in the padding.
    package static func im2col(_ g: Conv2DGeometry, x: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, ldCol: Int) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, wd = g.inWidth, sw = g.strideWidth
        if sw == 1 && g.strideHeight == 1 && ow == wd {
            im2colSamePadding(g, x: x, col: col, ldCol: ldCol)
            return
        }
        var r = 0
        for c in 0..<g.inChannels {
            let xc = x + c * h * wd
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let row = col + r * ldCol
                    r += 1
                    let base = -g.padLeft + j * g.dilationWidth
                    let (lo, hi) = validRange(base: base, stride: sw, size: wd, count: ow)
                    for y in 0..<oh {
                        let ih = g.inRow(y, i)
                        let dst = row + y * ow
                        guard ih >= 0, ih < h else {
                            dst.update(repeating: 0, count: ow)
                            continue
                        }
                        let src = xc + ih * wd + base
                        // Plain loops: rows are short (tens of values), where a memcpy call costs
                        // more than the copy.
                        var q = 0
                        while q < lo { dst[q] = 0; q += 1 }
                        if sw == 1 {
                            while q < hi { dst[q] = src[q]; q += 1 }
                        } else {
                            while q < hi { dst[q] = src[q * sw]; q += 1 }
                        }
                        while q < ow { dst[q] = 0; q += 1 }
                    }
                }
            }
        }
    }

    /// im2col for stride 1 with as many output as input columns ("same" padding): then row
    /// `(c, i, j)` is the input plane shifted by a constant flat offset, so it is one contiguous
    /// copy, after which the rows and columns that fall in the padding are set to zero.
    private static func im2colSamePadding(_ g: Conv2DGeometry, x: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, ldCol: Int) {
        let oh = g.outHeight, w = g.inWidth, h = g.inHeight, plane = h * w
        var r = 0
        for c in 0..<g.inChannels {
            let xc = x + c * plane
            for i in 0..<g.kernelHeight {
                let rowShift = i * g.dilationHeight - g.padTop
                let (rlo, rhi) = Conv2DGeometry.taps(base: rowShift, step: 1, size: h, count: oh)
                for j in 0..<g.kernelWidth {
                    let colShift = j * g.dilationWidth - g.padLeft
                    let (lo, hi) = Conv2DGeometry.taps(base: colShift, step: 1, size: w, count: w)
                    let dst = col + r * ldCol
                    r += 1
                    let shift = rowShift * w + colShift
                    // dst[f] = xc[f + shift] for the flat range of the valid rows, clamped to the plane.
                    let from = max(rlo * w, -shift), to = min(rhi * w, plane - shift)
                    var f = 0
                    while f < from { dst[f] = 0; f += 1 }
                    if to > from { (dst + from).update(from: xc + from + shift, count: to - from) }
                    f = max(to, from)
                    while f < oh * w { dst[f] = 0; f += 1 }
                    // Columns whose tap falls in the left or right padding wrapped into the
                    // neighbouring row: zero them.
                    // (Column by column: a run of one or two values per row would otherwise
                    // become a memset call per row.)
                    // (Two plain ranges: concatenating them into an array allocated per row.)
                    for q in 0..<lo { zeroColumn(dst + rlo * w + q, rows: rhi - rlo, stride: w) }
                    for q in hi..<w { zeroColumn(dst + rlo * w + q, rows: rhi - rlo, stride: w) }
                }
            }
        }
    }

    @inline(__always)
    private static func zeroColumn(_ start: UnsafeMutablePointer<Float>, rows: Int, stride: Int) {
        var d = start
        for _ in 0..<max(0, rows) {
            d[0] = 0
            d += stride
        }
    }

    /// The output columns `lo..<hi` whose tap `q * stride + base` lies in `0..<size`.
    @inline(__always)
    package static func validRange(base: Int, stride: Int, size: Int, count: Int) -> (Int, Int) {
        Conv2DGeometry.taps(base: base, step: stride, size: size, count: count)
    }

    /// Depthwise (one input channel per group, any channel multiplier): for each output channel,
    /// bias plus each kernel tap's weight times the shifted input plane, float32, taps in order.
    static func depthwiseConv2d(
        _ g: Conv2DGeometry, batch: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>
    ) {
        let oh = g.outHeight, ow = g.outWidth, h = g.inHeight, wd = g.inWidth, sw = g.strideWidth
        let coutG = g.outChannelsPerGroup
        for n in 0..<batch {
            for co in 0..<g.outChannels {
                let xc = x + n * g.inputCount + (co / coutG) * h * wd
                let yc = y + n * g.outputCount + co * oh * ow
                yc.update(repeating: bias?[co] ?? 0, count: oh * ow)
                let wc = w + co * g.kernelHeight * g.kernelWidth
                for i in 0..<g.kernelHeight {
                    for j in 0..<g.kernelWidth {
                        let wv = wc[i * g.kernelWidth + j]
                        let base = -g.padLeft + j * g.dilationWidth
                        let (lo, hi) = validRange(base: base, stride: sw, size: wd, count: ow)
                        guard hi > lo else { continue }
                        for r in 0..<oh {
                            let ih = g.inRow(r, i)
                            guard ih >= 0, ih < h else { continue }
                            let src = xc + ih * wd + base
                            let dst = yc + r * ow
                            if sw == 1 {
                                for q in lo..<hi { dst[q] = dst[q] + wv * src[q] }
                            } else {
                                for q in lo..<hi { dst[q] = dst[q] + wv * src[q * sw] }
                            }
                        }
                    }
                }
            }
        }
    }
}
