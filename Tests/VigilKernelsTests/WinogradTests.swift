import Testing
@testable import VigilKernels

/// The prepared convolutions (`PreparedConv2D`, VigilKernelsAVX2: Winograd F(4x4, 3x3) from 8
/// input channels, direct FMA loops below) against the plain-Swift reference twin, on shapes
/// that exercise every edge of the kernels: channel counts that are not multiples of the vector
/// width (8) or the GEMM block (16), feature maps whose sides are not multiples of the 4x4 tile
/// or the direct loops' 6 pixels, padding 0, 1, 2 and asymmetric, 1x1 and 2x2 inputs, kernels
/// other than 3x3 (direct loops), batches that span several passes of stacked samples, and every
/// fused activation.
///
/// Rounding contract: the transforms' constants (up to 8 in Aᵀ, 5 in Bᵀ, 1/24 in G) amplify
/// float32 rounding, so the bound is `tolerance` x (sum |w x| + |bias| + 1); the largest error
/// measured over this suite is printed: at most 2.6e-6 of sum |w x|.
struct WinogradTests {
    /// Relative to sum |w * x|: 2^-16, about 128 float ulps and 6x the largest error measured
    /// here (2.6e-6). A wrong transform constant is off by far more: Aᵀ's 8 read as 8.01 fails it.
    static let tolerance: Float = 1.0 / 65536

    static let geometries: [(String, Conv2DGeometry)] = [
        ("retinopathy conv2 (16 -> 32, 14x14)", same(c: 16, k: 32, h: 14, w: 14)),
        ("retinopathy conv3 (32 -> 64, 7x7)", same(c: 32, k: 64, h: 7, w: 7)),
        ("8 -> 16, 8x8", same(c: 8, k: 16, h: 8, w: 8)),
        ("13 -> 5, 9x6 (partial vectors, partial tiles)", same(c: 13, k: 5, h: 9, w: 6)),
        ("24 -> 40, 5x11", same(c: 24, k: 40, h: 5, w: 11)),
        ("9 -> 17, 1x1 input", same(c: 9, k: 17, h: 1, w: 1)),
        ("8 -> 8, 2x2 input", same(c: 8, k: 8, h: 2, w: 2)),
        ("no padding (valid), 10 -> 12, 11x9", Conv2DGeometry(inChannels: 10, inHeight: 11, inWidth: 9, outChannels: 12, outHeight: 9, outWidth: 7, kernelHeight: 3, kernelWidth: 3)),
        ("padding 2 (output larger than input)", Conv2DGeometry(inChannels: 8, inHeight: 5, inWidth: 6, outChannels: 9, outHeight: 7, outWidth: 8, kernelHeight: 3, kernelWidth: 3, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2)),
        ("asymmetric padding (SAME_UPPER-like)", Conv2DGeometry(inChannels: 16, inHeight: 6, inWidth: 7, outChannels: 16, outHeight: 6, outWidth: 7, kernelHeight: 3, kernelWidth: 3, padTop: 0, padLeft: 2, padBottom: 2, padRight: 0)),
        ("direct: retinopathy conv1 (3 -> 16, 28x28)", same(c: 3, k: 16, h: 28, w: 28)),
        ("direct: 1 -> 5, 7x13", same(c: 1, k: 5, h: 7, w: 13)),
        ("direct: 7 -> 20, 5x5 kernel, pad 2", Conv2DGeometry(inChannels: 7, inHeight: 9, inWidth: 10, outChannels: 20, outHeight: 9, outWidth: 10, kernelHeight: 5, kernelWidth: 5, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2)),
        ("direct: 2 -> 33, 1x3 kernel, asymmetric pads", Conv2DGeometry(inChannels: 2, inHeight: 4, inWidth: 11, outChannels: 33, outHeight: 5, outWidth: 10, kernelHeight: 1, kernelWidth: 3, padTop: 1, padLeft: 0, padBottom: 0, padRight: 1)),
        ("direct: 4 -> 8, 1x1 kernel, 1x1 input", Conv2DGeometry(inChannels: 4, inHeight: 1, inWidth: 1, outChannels: 8, outHeight: 1, outWidth: 1, kernelHeight: 1, kernelWidth: 1)),
    ]

    static func same(c: Int, k: Int, h: Int, w: Int) -> Conv2DGeometry {
        Conv2DGeometry(
            inChannels: c, inHeight: h, inWidth: w, outChannels: k, outHeight: h, outWidth: w, kernelHeight: 3, kernelWidth: 3,
            padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
    }

    static let activations: [(Bool, TensorKernels.Unary?)] = [
        (true, nil), (false, nil), (true, .relu), (true, .leakyRelu(alpha: 0.1)), (false, .clip(lower: -0.1, upper: 0.2)), (true, .sigmoid),
    ]

    @Test(arguments: geometries.map(\.0), [1, 2, 11])
    func matchesTheReference(geometry name: String, batch: Int) throws {
        let g = Self.geometries.first { $0.0 == name }!.1
        #expect(g.validate() == nil)
        #expect(PreparedConv2D.accepts(g))
        let w = TensorKernelTests.floats(g.weightCount, seed: 21)
        guard let conv = PreparedConv2D(g, weights: w) else {
            // The kernel needs AVX2 and FMA; on other CPUs models keep im2col + GEMM.
            #expect(!CPU.supportsAVX2Kernels)
            return
        }
        let x = TensorKernelTests.floats(batch * g.inputCount, seed: 22)
        let b = TensorKernelTests.floats(g.outChannels, seed: 23)
        var bound = [Float](repeating: 0, count: batch * g.outputCount)
        ReferenceKernels.conv2d(g, batch: batch, x: x.map(abs), w: w.map(abs), bias: nil, y: &bound)
        var worst: Float = 0
        for (useBias, activation) in Self.activations {
            var want = [Float](repeating: .nan, count: batch * g.outputCount)
            var y = want
            var scratch = [Float](repeating: .nan, count: conv.scratchCount)
            b.withUnsafeBufferPointer { bp in
                ReferenceKernels.conv2d(g, batch: batch, x: x, w: w, bias: useBias ? bp.baseAddress! : nil, activation: activation, y: &want)
                conv.run(batch: batch, x: x, bias: useBias ? bp.baseAddress! : nil, activation: activation, y: &y, scratch: &scratch)
            }
            for i in y.indices {
                let scale = bound[i] + (useBias ? abs(b[(i / g.outPixels) % g.outChannels]) : 0) + 1
                worst = max(worst, abs(y[i] - want[i]) / scale)
                #expect(
                    abs(y[i] - want[i]) <= Self.tolerance * scale,
                    "\(name) batch \(batch) bias \(useBias) \(String(describing: activation)) [\(i)]: \(y[i]) vs \(want[i])")
            }
        }
        print("Prepared convolution \(name), batch \(batch): largest error / (sum |w x| + |b| + 1) = \(worst)")
    }

    @Test func takesOnlyWhatItComputes() {
        let base = Self.same(c: 16, k: 16, h: 8, w: 8)
        #expect(PreparedConv2D.accepts(base))
        var g = base
        g.strideHeight = 2; g.outHeight = 4
        #expect(!PreparedConv2D.accepts(g), "stride 2")
        g = base
        g.dilationWidth = 2; g.padLeft = 2; g.padRight = 2
        #expect(!PreparedConv2D.accepts(g), "dilation")
        g = base
        g.groups = 2
        #expect(!PreparedConv2D.accepts(g), "groups")
        g = base
        g.kernelHeight = 5; g.kernelWidth = 5; g.padTop = 2; g.padLeft = 2; g.padBottom = 2; g.padRight = 2
        #expect(!PreparedConv2D.accepts(g), "5x5 with 8+ channels")
        g = base
        g.kernelHeight = 1; g.kernelWidth = 1; g.padTop = 0; g.padLeft = 0; g.padBottom = 0; g.padRight = 0
        #expect(!PreparedConv2D.accepts(g), "1x1 with 8+ channels: a plain GEMM")
        g.inChannels = 3
        #expect(PreparedConv2D.usesWinograd(g) == false, "fewer than 8 channels: direct loops, any kernel")
        g = base
        g.inChannels = 3
        #expect(PreparedConv2D.usesWinograd(g) == false, "3x3 with 3 channels: direct loops")
        #expect(PreparedConv2D.usesWinograd(base) == true)
        g = base
        g.outHeight = 7
        #expect(!PreparedConv2D.accepts(g), "inconsistent output size")
        #expect(KernelTable.reference.prepareConv2d(base, [Float](repeating: 1, count: base.weightCount)) == nil)
    }

    /// The transforms on a hand-checkable case: a kernel with a single tap picks one input pixel.
    @Test func aSingleTapShiftsTheInput() throws {
        let g = Self.same(c: 8, k: 8, h: 6, w: 5)
        var w = [Float](repeating: 0, count: g.weightCount)
        // Output channel k reads input channel k at tap (k / 3, k % 3) (taps 0...7).
        for k in 0..<8 { w[(k * 8 + k) * 9 + k] = 1 }
        let conv = try #require(PreparedConv2D(g, weights: w), "an 8-channel 3x3 convolution is prepared")
        let x = (0..<g.inputCount).map { Float($0 % 97) - 40 }
        var y = [Float](repeating: .nan, count: g.outputCount)
        var scratch = [Float](repeating: 0, count: conv.scratchCount)
        conv.run(batch: 1, x: x, bias: nil, activation: nil, y: &y, scratch: &scratch)
        for k in 0..<8 {
            let (i, j) = (k / 3, k % 3)
            for oh in 0..<6 {
                for ow in 0..<5 {
                    let ih = oh - 1 + i, iw = ow - 1 + j
                    let want: Float = (0..<6).contains(ih) && (0..<5).contains(iw) ? x[(k * 6 + ih) * 5 + iw] : 0
                    #expect(abs(y[(k * 6 + oh) * 5 + ow] - want) <= 1e-4, "channel \(k) (\(oh), \(ow))")
                }
            }
        }
    }
}
