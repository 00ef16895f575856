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
/// GEMM: today 3x3, stride 1, undilated, ungrouped convolutions with at least 8 input channels,
/// by Winograd F(4x4, 3x3) (VigilKernelsAVX2/Winograd.swift), on CPUs with AVX2 and FMA.
///
/// Measured on the retinopathy model (1 thread, AMD EPYC, `vigil bench`): see docs/CNN.md.
/// Below 8 input channels the transforms cost more than the 2.25x fewer multiplications save
/// (the first layer of an RGB network stays on im2col).
///
/// Numerical contract: `Validation.rounding` (Winograd's doc comment); the shared kernel
/// suite compares it with `ReferenceKernels.conv2d`.
package final class PreparedConv2D: @unchecked Sendable {
    package let geometry: Conv2DGeometry
    private let winograd: Winograd
    private let u: UnsafeMutablePointer<Float>

    /// nil when `g` is not a convolution this kernel takes, or the CPU lacks AVX2/FMA.
    /// `w` are the weights `[Cout, Cin, 3, 3]`; they are transformed here and not read again.
    package init?(_ g: Conv2DGeometry, weights w: UnsafePointer<Float>) {
        guard Self.accepts(g), CPU.supportsAVX2Kernels else { return nil }
        geometry = g
        winograd = Winograd(
            inChannels: g.inChannels, outChannels: g.outChannels, inHeight: g.inHeight, inWidth: g.inWidth,
            outHeight: g.outHeight, outWidth: g.outWidth, padTop: g.padTop, padLeft: g.padLeft)
        u = .allocate(capacity: winograd.weightCount)
        winograd.transformWeights(w, into: u)
    }

    deinit { u.deallocate() }

    /// The convolutions this kernel computes (whatever the CPU).
    package static func accepts(_ g: Conv2DGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideHeight == 1 && g.strideWidth == 1
            && g.dilationHeight == 1 && g.dilationWidth == 1 && g.groups == 1 && g.inChannels >= 8
            && g.outHeight == g.inHeight + g.padTop + g.padBottom - 2
            && g.outWidth == g.inWidth + g.padLeft + g.padRight - 2
    }

    /// Floats of scratch `run` needs (the same for any batch).
    package var scratchCount: Int { winograd.scratchCount }

    /// y = f(conv(x, w) + bias) over `batch` NCHW samples, as `BLAS.conv2d`.
    package func run(
        batch: Int, x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: TensorKernels.Unary?,
        y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let fused: Winograd.Activation
        var after: TensorKernels.Unary?
        switch activation {
        case nil: fused = .none
        case .relu?: fused = .relu
        case .leakyRelu(let alpha)?: fused = .leakyRelu(alpha: alpha)
        case .clip(let lower, let upper)?: fused = .clip(lower: lower, upper: upper)
        case let other?: fused = .none; after = other
        }
        winograd.run(batch: batch, x: x, u: u, bias: bias, activation: fused, y: y, scratch: scratch)
        if let after { TensorKernels.apply(after, count: batch * geometry.outputCount, x: y, y: y) }
    }
}
