internal import CCPU
internal import VigilKernelsAVX2

/// What the CPU this process runs on can execute.
package enum CPU {
    /// AVX2, FMA and the rest of what `-target-cpu haswell` may emit (checked once with cpuid);
    /// the kernels in VigilKernelsAVX2 run only when this holds. Always true off x86-64, where
    /// those kernels are compiled for the baseline.
    package static let supportsAVX2Kernels: Bool = vigil_cpu_supports_haswell() != 0
}

/// A convolution whose weights were prepared once, at load, for a faster kernel than im2col +
/// GEMM, on CPUs with AVX2 and FMA (VigilKernelsAVX2). Stride 1, undilated, ungrouped
/// convolutions only:
///
/// - 3x3 with at least 8 input channels: Winograd F(4x4, 3x3) (`Winograd`), 2.25 products per
///   output pixel and channel pair instead of 9;
/// - fewer than 8 input channels, any kernel size: direct FMA loops (`DirectConv`), where
///   im2col + GEMM spends its time copying and packing (the first layer of an RGB network).
///
/// Measured on the retinopathy model (AMD EPYC, 1 thread, batch 64; docs/CNN.md has the
/// steps): 12.3k images/s on im2col + OpenBLAS, 20.4k with Winograd for its second and third
/// layers, 21.6k with the direct loops for its 3-channel first layer (Winograd there measured
/// slower than im2col: 3-deep GEMMs and full transforms for 3 channels).
///
/// Numerical contract: rounding, not bit for bit (see each kernel); the shared suite
/// (Tests/VigilKernelsTests/WinogradTests.swift) compares both with `ReferenceKernels.conv2d`.
package final class PreparedConv2D: @unchecked Sendable {
    private enum Kernel {
        case winograd(Winograd)
        case direct(DirectConv)
    }

    package let geometry: Conv2DGeometry
    private let kernel: Kernel
    private let u: UnsafeMutablePointer<Float>

    /// nil when `g` is not a convolution these kernels take, or the CPU lacks AVX2/FMA.
    /// `w` are the weights `[Cout, Cin, kh, kw]`; they are transformed here and not read again.
    package init?(_ g: Conv2DGeometry, weights w: UnsafePointer<Float>) {
        guard let winograd = Self.usesWinograd(g), CPU.supportsAVX2Kernels else { return nil }
        geometry = g
        if winograd {
            let k = Winograd(
                inChannels: g.inChannels, outChannels: g.outChannels, inHeight: g.inHeight, inWidth: g.inWidth,
                outHeight: g.outHeight, outWidth: g.outWidth, padTop: g.padTop, padLeft: g.padLeft)
            u = .allocate(capacity: k.weightCount)
            k.transformWeights(w, into: u)
            kernel = .winograd(k)
        } else {
            let k = DirectConv(
                inChannels: g.inChannels, outChannels: g.outChannels, inHeight: g.inHeight, inWidth: g.inWidth,
                outHeight: g.outHeight, outWidth: g.outWidth, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                padTop: g.padTop, padLeft: g.padLeft)
            u = .allocate(capacity: k.weightCount)
            k.prepareWeights(w, into: u)
            kernel = .direct(k)
        }
    }

    deinit { u.deallocate() }

    /// Whether `g` goes to Winograd (true) or the direct loops (false), or to neither (nil),
    /// whatever the CPU.
    package static func usesWinograd(_ g: Conv2DGeometry) -> Bool? {
        guard g.strideHeight == 1, g.strideWidth == 1, g.dilationHeight == 1, g.dilationWidth == 1, g.groups == 1,
            g.outHeight == g.inHeight + g.padTop + g.padBottom - g.kernelHeight + 1,
            g.outWidth == g.inWidth + g.padLeft + g.padRight - g.kernelWidth + 1,
            g.outHeight > 0, g.outWidth > 0
        else { return nil }
        if g.inChannels < 8 { return false }
        return g.kernelHeight == 3 && g.kernelWidth == 3 ? true : nil
    }

    /// The convolutions these kernels compute (whatever the CPU).
    package static func accepts(_ g: Conv2DGeometry) -> Bool { usesWinograd(g) != nil }

    /// The kernel, as `vigil inspect` shows it.
    package var kernelName: String {
        switch kernel {
        case .winograd: return "Winograd F(4x4, 3x3), AVX2"
        case .direct: return "direct loops, AVX2"
        }
    }

    /// Floats of scratch `run` needs (the same for any batch).
    package var scratchCount: Int {
        switch kernel {
        case .winograd(let k): return k.scratchCount
        case .direct(let k): return k.scratchCount
        }
    }

    /// y = f(conv(x, w) + bias) over `batch` NCHW samples, as `BLAS.conv2d`.
    package func run(
        batch: Int, x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: TensorKernels.Unary?,
        y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let fused: FusedActivation
        var after: TensorKernels.Unary?
        switch activation {
        case nil: fused = .none
        case .relu?: fused = .relu
        case .leakyRelu(let alpha)?: fused = .leakyRelu(alpha: alpha)
        case .clip(let lower, let upper)?: fused = .clip(lower: lower, upper: upper)
        case let other?: fused = .none; after = other
        }
        switch kernel {
        case .winograd(let k): k.run(batch: batch, x: x, u: u, bias: bias, activation: fused, y: y, scratch: scratch)
        case .direct(let k): k.run(batch: batch, x: x, u: u, bias: bias, activation: fused, y: y, scratch: scratch)
        }
        if let after { TensorKernels.apply(after, count: batch * geometry.outputCount, x: y, y: y) }
    }
}
