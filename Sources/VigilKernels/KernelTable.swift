/// The set of dense kernels a model evaluates with. `best` is OpenBLAS; `reference` is plain
/// Swift. Tests run the same suite on both (tract's `generic()` / `best()` pattern).
package struct KernelTable: Sendable {
    package typealias GEMV = @Sendable (
        _ rows: Int, _ cols: Int, _ a: UnsafePointer<Double>, _ x: UnsafePointer<Double>,
        _ beta: Double, _ y: UnsafeMutablePointer<Double>
    ) -> Void
    package typealias GEMMABt = @Sendable (
        _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
        _ beta: Double, _ c: UnsafeMutablePointer<Double>
    ) -> Void

    /// Single precision, row-major: c = alpha * op(a) * op(b) + beta * c.
    package typealias SGEMM = @Sendable (
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) -> Void
    /// NCHW convolution of `batch` samples with optional bias and fused activation, using `scratch`.
    package typealias Conv2D = @Sendable (
        _ geometry: Conv2DGeometry, _ batch: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        _ bias: UnsafePointer<Float>?, _ activation: TensorKernels.Unary?, _ y: UnsafeMutablePointer<Float>,
        _ scratch: UnsafeMutablePointer<Float>
    ) -> Void
    /// Floats of scratch `conv2d` needs for a geometry and batch.
    package typealias Conv2DScratch = @Sendable (_ geometry: Conv2DGeometry, _ batch: Int) -> Int
    /// Weights prepared at load for a faster convolution kernel, or nil to use `conv2d`.
    package typealias PrepareConv2D = @Sendable (_ geometry: Conv2DGeometry, _ w: UnsafePointer<Float>) -> PreparedConv2D?

    package let name: String
    package let gemv: GEMV
    package let gemmABt: GEMMABt
    package let sgemm: SGEMM
    package let conv2d: Conv2D
    package let conv2dScratch: Conv2DScratch
    package let prepareConv2d: PrepareConv2D

    package static let reference = KernelTable(
        name: "reference",
        gemv: { ReferenceKernels.gemv(rows: $0, cols: $1, a: $2, x: $3, beta: $4, y: $5) },
        gemmABt: { ReferenceKernels.gemmABt(m: $0, n: $1, k: $2, a: $3, b: $4, beta: $5, c: $6) },
        sgemm: {
            ReferenceKernels.sgemm(
                transA: $0, transB: $1, m: $2, n: $3, k: $4, alpha: $5, a: $6, lda: $7, b: $8, ldb: $9,
                beta: $10, c: $11, ldc: $12)
        },
        conv2d: { g, batch, x, w, bias, f, y, _ in
            ReferenceKernels.conv2d(g, batch: batch, x: x, w: w, bias: bias, activation: f, y: y)
        },
        conv2dScratch: { _, _ in 0 },
        prepareConv2d: { _, _ in nil })

    package static let blas = KernelTable(
        name: "openblas",
        gemv: { BLAS.gemv(rows: $0, cols: $1, a: $2, x: $3, beta: $4, y: $5) },
        gemmABt: { BLAS.gemmABt(m: $0, n: $1, k: $2, a: $3, b: $4, beta: $5, c: $6) },
        sgemm: {
            BLAS.sgemm(
                transA: $0, transB: $1, m: $2, n: $3, k: $4, alpha: $5, a: $6, lda: $7, b: $8, ldb: $9,
                beta: $10, c: $11, ldc: $12)
        },
        conv2d: { g, batch, x, w, bias, f, y, scratch in
            BLAS.conv2d(g, batch: batch, x: x, w: w, bias: bias, activation: f, y: y, scratch: scratch)
        },
        conv2dScratch: { g, batch in BLAS.conv2dScratchCount(g, batch: batch) },
        prepareConv2d: { g, w in PreparedConv2D(g, weights: w) })

    /// The OpenBLAS table with a fixed convolution lowering (for benchmarks and the shared suite):
    /// every convolution takes that lowering, none is prepared.
    package static func blas(lowering: BLAS.ConvLowering) -> KernelTable {
        KernelTable(
            name: "openblas-\(lowering.rawValue)", gemv: blas.gemv, gemmABt: blas.gemmABt, sgemm: blas.sgemm,
            conv2d: { g, batch, x, w, bias, f, y, scratch in
                BLAS.conv2d(g, batch: batch, x: x, w: w, bias: bias, activation: f, y: y, scratch: scratch, lowering: lowering)
            },
            conv2dScratch: { g, batch in BLAS.conv2dScratchCount(g, batch: batch, lowering: lowering) },
            prepareConv2d: { _, _ in nil })
    }

    /// The table models use unless told otherwise.
    package static let best = blas
}
