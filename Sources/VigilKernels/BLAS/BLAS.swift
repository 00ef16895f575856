internal import CBLAS

/// Thin wrappers over OpenBLAS. Buffers in, buffers out: kernels never see model types.
///
/// Numerical contract: rounding (equal to the reference up to the rounding of reordered sums, not bit
/// for bit). BLAS reassociates sums (blocking, SIMD lanes), so
/// results differ from the reference loops by a few ulps of the dot products' magnitude.
package enum BLAS {
    /// OpenBLAS defaults to one thread per core and spins between calls. Vigil sets it to one
    /// thread and gets its parallelism from batch partitions and concurrent requests instead.
    package static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    package static var threads: Int { Int(openblas_get_num_threads()) }

    /// y[r] = sum_c a[r * cols + c] * x[c] + beta * y[r], `a` row-major `rows x cols`.
    package static func gemv(
        rows: Int, cols: Int,
        a: UnsafePointer<Double>, x: UnsafePointer<Double>,
        beta: Double, y: UnsafeMutablePointer<Double>
    ) {
        guard rows > 0 else { return }
        cblas_dgemv(
            CblasRowMajor, CblasNoTrans, Int32(rows), Int32(cols), 1.0,
            a, Int32(max(cols, 1)), x, 1, beta, y, 1)
    }

    /// c = a * bᵀ + beta * c with `a` row-major `m x k`, `b` row-major `n x k`, `c` row-major `m x n`.
    package static func gemmABt(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, b: UnsafePointer<Double>,
        beta: Double, c: UnsafeMutablePointer<Double>
    ) {
        guard m > 0, n > 0 else { return }
        cblas_dgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1.0,
            a, Int32(max(k, 1)), b, Int32(max(k, 1)), beta, c, Int32(n))
    }

    /// Single-precision c = a * b (+ beta * c), all row-major: `a` m x k, `b` k x n, `c` m x n.
    package static func sgemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1.0,
            a, Int32(max(k, 1)), b, Int32(n), beta, c, Int32(n))
    }
}
