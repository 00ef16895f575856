import Foundation
import Testing
@testable import VigilKernels

/// The float32 tensor kernels. The shared suite runs the convolution and the GEMM on every
/// table (and every lowering of the BLAS convolution) against the plain-Swift reference, with
/// the rounding contract's bound: float32 sums of K products differ from a `Double` sum by at
/// most a few ulps of sum |w * x|.
struct TensorKernelTests {
    static let tables: [KernelTable] = [.reference, .blas] + BLAS.ConvLowering.allCases.map { KernelTable.blas(lowering: $0) }

    static func floats(_ n: Int, seed: UInt64) -> [Float] {
        KernelTableTests.values(n, seed: seed).map { Float($0) }
    }

    static let geometries: [(String, Conv2DGeometry)] = [
        ("3x3 pad 1", Conv2DGeometry(inChannels: 3, inHeight: 9, inWidth: 7, outChannels: 5, outHeight: 9, outWidth: 7, kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)),
        ("stride 2, asymmetric pads", Conv2DGeometry(inChannels: 4, inHeight: 10, inWidth: 11, outChannels: 6, outHeight: 5, outWidth: 6, kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 0, padLeft: 1, padBottom: 1, padRight: 1)),
        ("dilation 2", Conv2DGeometry(inChannels: 2, inHeight: 12, inWidth: 12, outChannels: 3, outHeight: 12, outWidth: 12, kernelHeight: 3, kernelWidth: 3, dilationHeight: 2, dilationWidth: 2, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2)),
        ("groups 2", Conv2DGeometry(inChannels: 4, inHeight: 6, inWidth: 6, outChannels: 6, outHeight: 4, outWidth: 4, kernelHeight: 3, kernelWidth: 3, groups: 2)),
        ("depthwise x2", Conv2DGeometry(inChannels: 3, inHeight: 8, inWidth: 5, outChannels: 6, outHeight: 8, outWidth: 5, kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, groups: 3)),
        ("depthwise stride 2", Conv2DGeometry(inChannels: 4, inHeight: 9, inWidth: 9, outChannels: 4, outHeight: 5, outWidth: 5, kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, groups: 4)),
        ("stride 1, shifted same padding", Conv2DGeometry(inChannels: 3, inHeight: 6, inWidth: 5, outChannels: 2, outHeight: 6, outWidth: 5, kernelHeight: 3, kernelWidth: 3, padTop: 0, padLeft: 2, padBottom: 2, padRight: 0)),
        ("stride 1, 5x5 dilated same", Conv2DGeometry(inChannels: 2, inHeight: 7, inWidth: 9, outChannels: 3, outHeight: 7, outWidth: 9, kernelHeight: 5, kernelWidth: 5, dilationHeight: 2, dilationWidth: 1, padTop: 4, padLeft: 2, padBottom: 4, padRight: 2)),
        ("pointwise", Conv2DGeometry(inChannels: 8, inHeight: 5, inWidth: 5, outChannels: 3, outHeight: 5, outWidth: 5, kernelHeight: 1, kernelWidth: 1)),
        ("1-D as height 1", Conv2DGeometry(inChannels: 2, inHeight: 1, inWidth: 17, outChannels: 3, outHeight: 1, outWidth: 8, kernelHeight: 1, kernelWidth: 4, strideWidth: 2, padLeft: 1, padRight: 0)),
        ("kernel wider than input + pads", Conv2DGeometry(inChannels: 1, inHeight: 2, inWidth: 2, outChannels: 2, outHeight: 2, outWidth: 2, kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)),
    ]

    @Test(arguments: tables, geometries.map(\.0))
    func convolutionMatchesTheReference(table: KernelTable, geometry name: String) {
        let g = Self.geometries.first { $0.0 == name }!.1
        #expect(g.validate() == nil)
        let batch = 3
        let x = Self.floats(batch * g.inputCount, seed: 7)
        let w = Self.floats(g.weightCount, seed: 8)
        let b = Self.floats(g.outChannels, seed: 9)
        for (useBias, activation) in [(true, nil), (false, nil), (true, TensorKernels.Unary.leakyRelu(alpha: 0.1)), (false, .clip(lower: -0.1, upper: 0.2))] {
            var y = [Float](repeating: .nan, count: batch * g.outputCount)
            var want = y
            var bound = y
            let absX = x.map(abs), absW = w.map(abs)
            let scratch = [Float](repeating: 0, count: max(1, table.conv2dScratch(g, batch)))
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        var s = scratch
                        s.withUnsafeMutableBufferPointer { sp in
                            y.withUnsafeMutableBufferPointer {
                                table.conv2d(g, batch, xp.baseAddress!, wp.baseAddress!, useBias ? bp.baseAddress! : nil, activation, $0.baseAddress!, sp.baseAddress!)
                            }
                        }
                        want.withUnsafeMutableBufferPointer {
                            ReferenceKernels.conv2d(g, batch: batch, x: xp.baseAddress!, w: wp.baseAddress!, bias: useBias ? bp.baseAddress! : nil, activation: activation, y: $0.baseAddress!)
                        }
                    }
                }
            }
            absX.withUnsafeBufferPointer { xp in
                absW.withUnsafeBufferPointer { wp in
                    bound.withUnsafeMutableBufferPointer {
                        ReferenceKernels.conv2d(g, batch: batch, x: xp.baseAddress!, w: wp.baseAddress!, bias: nil, y: $0.baseAddress!)
                    }
                }
            }
            for i in y.indices {
                // Rounding contract: float32 accumulation over K terms, bounded by sum |w x|.
                let tol = Float(g.patchCount + 2) * Float.ulpOfOne * (bound[i] + 1)
                #expect(abs(y[i] - want[i]) <= tol, "\(table.name) \(name) bias \(useBias) \(String(describing: activation)) [\(i)]: \(y[i]) vs \(want[i])")
            }
        }
    }

    @Test func referenceConvolutionIsHandCheckable() {
        // 1 channel 3x3 input, 2x2 kernel of ones, no pad: each output sums a 2x2 window.
        let g = Conv2DGeometry(inChannels: 1, inHeight: 3, inWidth: 3, outChannels: 1, outHeight: 2, outWidth: 2, kernelHeight: 2, kernelWidth: 2)
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let w: [Float] = [1, 1, 1, 1]
        var y = [Float](repeating: 0, count: 4)
        var bias: Float = 0.5
        ReferenceKernels.conv2d(g, batch: 1, x: x, w: w, bias: &bias, y: &y)
        #expect(y == [12.5, 16.5, 24.5, 28.5])
    }

    @Test(arguments: tables, [(false, false), (true, false), (false, true), (true, true)])
    func sgemmMatchesTheReference(table: KernelTable, trans: (Bool, Bool)) {
        let (m, n, k) = (13, 7, 29)
        let a = Self.floats(m * k, seed: 11), b = Self.floats(k * n, seed: 12)
        var c = Self.floats(m * n, seed: 13)
        var want = c
        let lda = trans.0 ? m : k, ldb = trans.1 ? k : n
        table.sgemm(trans.0, trans.1, m, n, k, 0.75, a, lda, b, ldb, 0.5, &c, n)
        ReferenceKernels.sgemm(transA: trans.0, transB: trans.1, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb, beta: 0.5, c: &want, ldc: n)
        for i in c.indices { #expect(abs(c[i] - want[i]) <= 1e-5, "\(table.name) \(trans) [\(i)]") }
    }

    @Test func validRangeCoversExactlyTheTapsInside() {
        for base in -5...5 {
            for stride in 1...3 {
                let (lo, hi) = BLAS.validRange(base: base, stride: stride, size: 6, count: 7)
                for q in 0..<7 {
                    let inside = (0..<6).contains(q * stride + base)
                    #expect(inside == (lo..<hi).contains(q), "base \(base) stride \(stride) q \(q)")
                }
            }
        }
    }

    @Test func maxPoolIgnoresPaddingAndAveragePoolCountsItOnlyWhenAsked() {
        // 1x1x2x2 input, 2x2 window, stride 1, pad 1 on every side: 3x3 outputs.
        let g = Conv2DGeometry(inChannels: 1, inHeight: 2, inWidth: 2, outChannels: 1, outHeight: 3, outWidth: 3, kernelHeight: 2, kernelWidth: 2, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        let x: [Float] = [-1, -2, -3, -4]
        var y = [Float](repeating: 0, count: 9)
        TensorKernels.maxPool2d(g, batch: 1, x: x, y: &y)
        #expect(y == [-1, -1, -2, -1, -1, -2, -3, -3, -4])
        TensorKernels.averagePool2d(g, batch: 1, countIncludePad: false, x: x, y: &y)
        #expect(y == [-1, -1.5, -2, -2, -2.5, -3, -3, -3.5, -4])
        TensorKernels.averagePool2d(g, batch: 1, countIncludePad: true, x: x, y: &y)
        #expect(y == [-0.25, -0.75, -0.5, -1, -2.5, -1.5, -0.75, -1.75, -1])
    }

    @Test func broadcastingFollowsNumPy() {
        // [2, 3] + [3] and [2, 1] * [1, 3].
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        var y = [Float](repeating: 0, count: 6)
        TensorKernels.broadcast(.add, a: a, aShape: [2, 3], b: [10, 20, 30], bShape: [3], y: &y, yShape: [2, 3])
        #expect(y == [11, 22, 33, 14, 25, 36])
        TensorKernels.broadcast(.mul, a: [2, 3], aShape: [2, 1], b: [1, 10, 100], bShape: [1, 3], y: &y, yShape: [2, 3])
        #expect(y == [2, 20, 200, 3, 30, 300])
    }

    @Test func softmaxIsStableAndSumsToOne() {
        var y = [Float](repeating: 0, count: 3)
        TensorKernels.softmax(outer: 1, axis: 3, inner: 1, x: [1000, 1001, 999], y: &y)
        #expect(abs(y.reduce(0, +) - 1) < 1e-6)
        #expect(y[1] > y[0] && y[0] > y[2])
    }

    @Test func clipWithCrossedBoundsGivesTheUpperBound() {
        var y = [Float](repeating: 0, count: 3)
        TensorKernels.apply(.clip(lower: 2, upper: 1), count: 3, x: [0, 1.5, 3], y: &y)
        #expect(y == [1, 1, 1])
    }

    @Test func bilinearResizeKeepsAConstantImageAndTheSameSize() {
        let src: [UInt8] = (0..<(4 * 6 * 3)).map { UInt8($0 % 251) }
        var same = [UInt8](repeating: 0, count: src.count)
        ImageKernels.resizeBilinear(source: src, width: 6, height: 4, channels: 3, into: &same, width: 6, height: 4)
        #expect(same == src)
        let flat = [UInt8](repeating: 77, count: 10 * 10)
        var small = [UInt8](repeating: 0, count: 3 * 3)
        ImageKernels.resizeBilinear(source: flat, width: 10, height: 10, channels: 1, into: &small, width: 3, height: 3)
        #expect(small.allSatisfy { $0 == 77 })
        // 1x2 -> 1x4: half-pixel centres give 0, 64, 191, 255 (rounded) between 0 and 255.
        var wide = [UInt8](repeating: 0, count: 4)
        ImageKernels.resizeBilinear(source: [0, 255], width: 2, height: 1, channels: 1, into: &wide, width: 4, height: 1)
        #expect(wide == [0, 64, 191, 255])
    }

    @Test func normalizeIsFloat32InTheManifestsOrder() {
        // One RGB pixel; BGR order swaps the planes.
        var out = [Float](repeating: 0, count: 3)
        let scale = Float(1.0 / 255.0)
        ImageKernels.normalize(source: [10, 20, 30], pixels: 1, sourceChannels: 3, channelMap: [2, 1, 0], scale: scale, mean: [0.5, 0.25, 0], std: [2, 1, 0.5], into: &out)
        #expect(out == [(Float(30) * scale - 0.5) / 2, (Float(20) * scale - 0.25) / 1, (Float(10) * scale - 0) / 0.5])
    }
}
