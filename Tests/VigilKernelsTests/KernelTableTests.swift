import Foundation
import Testing
@testable import VigilKernels

/// The shared suite every kernel table runs (tract's `sigmoid_frame_tests!` pattern): the BLAS
/// paths are checked against the plain-Swift reference.
struct KernelTableTests {
    static let tables: [KernelTable] = [.reference, .blas]

    /// Deterministic pseudo-random values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Double] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Double(s >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    @Test(arguments: tables, [(1, 1), (7, 3), (130, 40), (513, 17)])
    func gemvMatchesLeftToRightSum(table: KernelTable, shape: (Int, Int)) {
        let (rows, cols) = shape
        let a = Self.values(rows * cols, seed: 1)
        let x = Self.values(cols, seed: 2)
        var y = Self.values(rows, seed: 3)
        let y0 = y
        a.withUnsafeBufferPointer { ap in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { table.gemv(rows, cols, ap.baseAddress!, xp.baseAddress!, 1.0, $0.baseAddress!) }
            }
        }
        for r in 0..<rows {
            var expected = 0.0
            for c in 0..<cols { expected += a[r * cols + c] * x[c] }
            expected += y0[r]
            // Rounding contract: a reassociated sum of `cols` products of magnitude <= 1.
            #expect(abs(y[r] - expected) <= Double(cols + 1) * 1e-15, "\(table.name) row \(r)")
        }
    }

    @Test(arguments: tables)
    func gemmABtMatchesLeftToRightSum(table: KernelTable) {
        let (m, n, k) = (37, 3, 11)
        let a = Self.values(m * k, seed: 4)
        let b = Self.values(n * k, seed: 5)
        var c = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { table.gemmABt(m, n, k, ap.baseAddress!, bp.baseAddress!, 0, $0.baseAddress!) }
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                var expected = 0.0
                for p in 0..<k { expected += a[i * k + p] * b[j * k + p] }
                #expect(abs(c[i * n + j] - expected) <= 1e-14, "\(table.name) (\(i),\(j))")
            }
        }
    }

    @Test func softmaxSumsToOneAndKeepsOrder() {
        var v = [1000.0, 1001.0, 999.0]
        v.withUnsafeMutableBufferPointer { Activations.softmax($0.baseAddress!, count: 3) }
        #expect(abs(v.reduce(0, +) - 1) < 1e-15)
        #expect(v[1] > v[0] && v[0] > v[2])
        #expect(abs(v[1] - 1 / (1 + exp(-1.0) + exp(-2.0))) < 1e-15)
    }

    @Test func sigmoidIsExactAtKnownPoints() {
        #expect(Activations.sigmoid(0) == 0.5)
        #expect(Activations.sigmoid(2, scale: 0.5) == 1 / (1 + exp(-1.0)))
        #expect(abs(Activations.logit(Activations.sigmoid(0.3)) - 0.3) < 1e-15)
    }

    @Test func parallelChunksCoverEveryIndexOnce() {
        let n = 10_007
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        Parallel.forEachChunk(count: n, minChunk: 100, threads: 4) { range in
            for i in range { hits[i] += 1 }
        }
        #expect(hits.allSatisfy { $0 == 1 })
    }
}

extension KernelTable: CustomTestStringConvertible {
    package var testDescription: String { name }
}
