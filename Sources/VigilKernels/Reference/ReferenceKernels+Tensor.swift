/// Plain-Swift twins of the float32 tensor kernels (`KernelTable.reference`): direct loops that
/// accumulate in `Double` and round once to `Float`, the ground truth that the BLAS lowering is
/// tested against (Tests/VigilKernelsTests/TensorKernelTests.swift).
extension ReferenceKernels {
    /// c = alpha * op(a) * op(b) + beta * c, all row-major; op(a) is `m x k`, op(b) is `k x n`.
    /// `beta == 0` ignores what `c` held (as BLAS does).
    package static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += Double(av) * Double(bv)
                }
                let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * acc + prior)
            }
        }
    }

    /// Direct convolution over `batch` NCHW samples: y[n, co, oh, ow] = bias[co] + the sum over
    /// the group's input channels and kernel taps of w * x (padding reads as zero), summed in
    /// `Double` in (channel, row, column) order, then the optional activation. Weights are
    /// `[outChannels, inChannels / groups, kernelHeight, kernelWidth]`; `bias` may be nil (zero).
    package static func conv2d(
        _ g: Conv2DGeometry, batch: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, activation: TensorKernels.Unary? = nil, y: UnsafeMutablePointer<Float>
    ) {
        defer { if let activation { TensorKernels.apply(activation, count: batch * g.outputCount, x: y, y: y) } }
        let cinG = g.inChannelsPerGroup, coutG = g.outChannelsPerGroup
        for n in 0..<batch {
            let xs = x + n * g.inputCount
            let ys = y + n * g.outputCount
            for co in 0..<g.outChannels {
                let group = co / coutG
                let wc = w + co * g.patchCount
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        var acc = bias.map { Double($0[co]) } ?? 0
                        for cl in 0..<cinG {
                            let ci = group * cinG + cl
                            for i in 0..<g.kernelHeight {
                                let ih = g.inRow(oh, i)
                                guard ih >= 0, ih < g.inHeight else { continue }
                                for j in 0..<g.kernelWidth {
                                    let iw = g.inColumn(ow, j)
                                    guard iw >= 0, iw < g.inWidth else { continue }
                                    let xv = xs[(ci * g.inHeight + ih) * g.inWidth + iw]
                                    let wv = wc[(cl * g.kernelHeight + i) * g.kernelWidth + j]
                                    acc += Double(xv) * Double(wv)
                                }
                            }
                        }
                        ys[(co * g.outHeight + oh) * g.outWidth + ow] = Float(acc)
                    }
                }
            }
        }
    }
}
