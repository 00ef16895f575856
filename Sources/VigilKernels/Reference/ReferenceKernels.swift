/// Plain-Swift twins of the BLAS kernels: the ground truth that the fast paths are tested
/// against (`KernelTable.reference`). Sums run left to right in `Double`.
package enum ReferenceKernels {
    package static func gemv(
        rows: Int, cols: Int,
        a: UnsafePointer<Double>, x: UnsafePointer<Double>,
        beta: Double, y: UnsafeMutablePointer<Double>
    ) {
        for r in 0..<rows {
            var acc = 0.0
            let row = a + r * cols
            for c in 0..<cols { acc += row[c] * x[c] }
            y[r] = beta == 0 ? acc : acc + beta * y[r]
        }
    }

    package static func gemmABt(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, b: UnsafePointer<Double>,
        beta: Double, c: UnsafeMutablePointer<Double>
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k { acc += a[i * k + p] * b[j * k + p] }
                c[i * n + j] = beta == 0 ? acc : acc + beta * c[i * n + j]
            }
        }
    }
}
