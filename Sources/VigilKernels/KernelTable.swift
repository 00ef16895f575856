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

    package let name: String
    package let gemv: GEMV
    package let gemmABt: GEMMABt

    package static let reference = KernelTable(
        name: "reference",
        gemv: { ReferenceKernels.gemv(rows: $0, cols: $1, a: $2, x: $3, beta: $4, y: $5) },
        gemmABt: { ReferenceKernels.gemmABt(m: $0, n: $1, k: $2, a: $3, b: $4, beta: $5, c: $6) })

    package static let blas = KernelTable(
        name: "openblas",
        gemv: { BLAS.gemv(rows: $0, cols: $1, a: $2, x: $3, beta: $4, y: $5) },
        gemmABt: { BLAS.gemmABt(m: $0, n: $1, k: $2, a: $3, b: $4, beta: $5, c: $6) })

    /// The table models use unless told otherwise.
    package static let best = blas
}
