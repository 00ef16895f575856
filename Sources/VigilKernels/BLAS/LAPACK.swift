internal import CBLAS

/// The LAPACKE and BLAS level-2/3 calls the out-of-distribution guard needs: a Cholesky factor
/// (`dpotrf`), triangular solves (`dtrsv` for one row, `dtrsm` for a batch) and the Gram matrix of
/// a batch (`dsyrk`). Row-major throughout; sizes are the caller's, checked there.
package enum LAPACK {
    /// Overwrites the symmetric positive-definite `n x n` matrix `a` (row-major) with its lower
    /// Cholesky factor L (a = L Lᵀ; the strict upper triangle is set to 0). False when `a` is not
    /// positive definite (LAPACKE's info > 0) or the arguments are refused.
    package static func choleskyLower(_ a: UnsafeMutablePointer<Double>, n: Int) -> Bool {
        guard n > 0 else { return true }
        let info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), a, Int32(n))
        guard info == 0 else { return false }
        for i in 0..<n { for j in (i + 1)..<n where j < n { a[i * n + j] = 0 } }
        return true
    }

    /// x := L⁻¹ x for the lower-triangular `n x n` L (row-major): one forward substitution.
    package static func solveLower(_ l: UnsafePointer<Double>, n: Int, _ x: UnsafeMutablePointer<Double>) {
        guard n > 0 else { return }
        cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, Int32(n), l, Int32(n), x, 1)
    }

    /// B := B L⁻ᵀ for `rows` row vectors B (`rows x n`, row-major): each row b becomes (L⁻¹ bᵀ)ᵀ,
    /// the batched forward substitution.
    package static func solveLowerRows(_ l: UnsafePointer<Double>, n: Int, rows: Int, _ b: UnsafeMutablePointer<Double>) {
        guard n > 0, rows > 0 else { return }
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, Int32(rows), Int32(n), 1.0, l, Int32(n), b, Int32(n))
    }

    /// c += aᵀ a for `a` row-major `rows x n` (only the lower triangle of the `n x n` c is updated).
    package static func addGram(_ a: UnsafePointer<Double>, rows: Int, n: Int, into c: UnsafeMutablePointer<Double>) {
        guard n > 0, rows > 0 else { return }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, Int32(n), Int32(rows), 1.0, a, Int32(n), 1.0, c, Int32(n))
    }
}
