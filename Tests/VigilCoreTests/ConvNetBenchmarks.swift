import Foundation
import Testing
import VigilCore
import VigilKernels

/// Opt-in (ENABLE_VIGIL_BENCHMARKS=1; meaningful only in a release build): the retinopathy
/// architecture (Conv3x3 3->16, MaxPool, 16->32, MaxPool, 32->64, GlobalAveragePool, Gemm; random
/// weights) at batch 64 on one thread, for each convolution lowering and chunk size. This is
/// how `BLAS.ConvLowering.choose` was picked.
///
///     swift build -c release --build-tests
///     ENABLE_VIGIL_BENCHMARKS=1 swift test -c release --skip-build --filter ConvNetBenchmarks
struct ConvNetBenchmarks {
    static let enabled = ProcessInfo.processInfo.environment["ENABLE_VIGIL_BENCHMARKS"] == "1"

    static func retinopathyLike(chunk: Int) throws -> ConvNet {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 3, 28, 28])
        b.chunkCapacity = chunk
        var seed: UInt64 = 42
        func w(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: seed >> 1) % 1000) / 5000
            }
        }
        func conv(_ x: Int, _ cin: Int, _ cout: Int, _ name: String) throws -> Int {
            let wt = try b.addConstant(name: name + ".w", shape: [cout, cin, 3, 3], values: w(cout * cin * 9))
            let bias = try b.addConstant(name: name + ".b", shape: [cout], values: w(cout))
            return try b.add(.conv(.init(padding: .explicit([1, 1, 1, 1]), activation: .relu)), name: name, opType: "Conv", inputs: [x, wt, bias], output: name)
        }
        func pool(_ x: Int, _ name: String) throws -> Int {
            try b.add(.maxPool(.init(kernelShape: [2, 2], strides: [2, 2])), name: name, opType: "MaxPool", inputs: [x], output: name)
        }
        var t = try pool(try conv(b.inputID, 3, 16, "c1"), "p1")
        t = try pool(try conv(t, 16, 32, "c2"), "p2")
        t = try conv(t, 32, 64, "c3")
        t = try b.add(.globalAveragePool, name: "g", opType: "GlobalAveragePool", inputs: [t], output: "g")
        t = try b.add(.reshape(.flatten(axis: 1)), name: "f", opType: "Flatten", inputs: [t], output: "f")
        let gw = try b.addConstant(name: "gw", shape: [1, 64], values: w(64))
        return try b.build(output: try b.add(.gemm(.init(transB: true)), name: "fc", opType: "Gemm", inputs: [t, gw], output: "y"))
    }

    @Test(.enabled(if: enabled)) func loweringsAndChunkSizes() throws {
        BLAS.setThreads(1)
        let batch = 64
        let x = (0..<(batch * 3 * 28 * 28)).map { Float(($0 * 7919) % 1000) / 250 - 2 }
        var y = [Float](repeating: 0, count: batch)
        var sink: Float = 0
        for chunk in [1, 4, 8, 16, 32, 64] {
            let net = try Self.retinopathyLike(chunk: chunk)
            for table in [KernelTable.blas, .blas(lowering: .perSample), .blas(lowering: .batched)] {
                var best = Double.infinity
                for _ in 0..<7 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<30 { net.predict(x, samples: batch, into: &y, threads: 1, kernels: table) }
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000 / Double(30 * batch))
                    sink += y[0]
                }
                print("chunk \(chunk)\t\(table.name)\t\(String(format: "%.1f", best)) µs per image")
            }
        }
        #expect(sink.isFinite)
    }
}
