package import VigilKernels

extension ConvNet {
    // MARK: - API

    /// Evaluates `samples` samples (`inputCount` floats each, NCHW) into `output` (`outputCount`
    /// floats each), over `threads` partitions of the batch (OpenBLAS itself stays at one
    /// thread). In `.fixed` mode `samples` must be 1. Each partition runs chunks of up to
    /// `chunkCapacity` samples in its own arena; nothing is allocated per call once the arenas
    /// exist.
    package func predict(
        _ input: UnsafePointer<Float>, samples: Int, into output: UnsafeMutablePointer<Float>, threads: Int = 1
    ) {
        predict(input, samples: samples, into: output, threads: threads, kernels: .best)
    }

    package func predict(
        _ input: UnsafePointer<Float>, samples: Int, into output: UnsafeMutablePointer<Float>, threads: Int,
        kernels: KernelTable
    ) {
        precondition(batchMode == .dynamic || samples <= 1, "a fixed-batch net takes one input at a time")
        let fin = inputCount, fout = outputCount
        let inBox = UncheckedSendable(input), outBox = UncheckedSendable(output)
        Parallel.forEachChunk(count: samples, minChunk: 2, threads: max(1, threads)) { range in
            arenas.withArena { arena in
                var lo = range.lowerBound
                while lo < range.upperBound {
                    let n = min(chunkCapacity, range.upperBound - lo)
                    runChunk(inBox.value + lo * fin, samples: n, into: outBox.value + lo * fout, arena: arena, kernels: kernels)
                    lo += n
                }
            }
        }
    }

    /// Margins in `Double` for rows of `inputCount` values (the `ModelIR` entry point): rows are
    /// rounded to float32, evaluated, and the float32 outputs widened exactly.
    package func predictRaw(
        _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, kernels: KernelTable
    ) {
        guard rows > 0 else { return }
        let fin = inputCount, fout = outputCount
        var xf = [Float](repeating: 0, count: rows * fin)
        for i in 0..<(rows * fin) { xf[i] = Float(x[i]) }
        var yf = [Float](repeating: 0, count: rows * fout)
        xf.withUnsafeBufferPointer { xp in
            yf.withUnsafeMutableBufferPointer { yp in
                if batchMode == .dynamic {
                    predict(xp.baseAddress!, samples: rows, into: yp.baseAddress!, threads: 1, kernels: kernels)
                } else {
                    for r in 0..<rows {
                        predict(xp.baseAddress! + r * fin, samples: 1, into: yp.baseAddress! + r * fout, threads: 1, kernels: kernels)
                    }
                }
            }
        }
        for i in 0..<(rows * fout) { out[i] = Double(yf[i]) }
    }

    // MARK: - Execution

    private func runChunk(
        _ input: UnsafePointer<Float>, samples n: Int, into output: UnsafeMutablePointer<Float>, arena: Arena,
        kernels: KernelTable
    ) {
        func pointer(_ t: Int) -> UnsafeMutablePointer<Float> {
            switch plan.storage[t] {
            case .input: return UnsafeMutablePointer(mutating: input)
            case .constant(let id): return constants.pointer(constants.slot[id]!)
            case .arena(let offset): return arena.values + offset * n
            }
        }
        func shape(_ t: Int) -> [Int] {
            var s = plan.shapes[t]
            if plan.batched[t] && n != 1 { s[0] *= n }
            return s
        }
        for (i, step) in plan.steps.enumerated() {
            if case .view = step { continue }
            let ins = plan.nodeInputs[i]
            Executor.run(
                step, inputs: ins.map { UnsafePointer(pointer($0)) }, inputShapes: ins.map(shape),
                output: pointer(plan.nodeOutputs[i]), outputShape: shape(plan.nodeOutputs[i]),
                scratch: arena.scratch, kernels: kernels, prepared: prepared(i, for: kernels))
        }
        output.update(from: pointer(plan.output), count: outputCount * n)
    }
}

/// Runs one step on concrete shapes (the batch already scaled in).
enum Executor {
    static func run(
        _ step: Step, inputs: [UnsafePointer<Float>], inputShapes: [[Int]], output y: UnsafeMutablePointer<Float>,
        outputShape: [Int], scratch: ScratchBuffer, kernels: KernelTable, prepared: PreparedConv2D? = nil
    ) {
        let x = inputs[0]
        let total = outputShape.reduce(1, *)
        switch step {
        case .conv(let g, let activation):
            let batch = inputShapes[0][0]
            if let prepared {
                let s = scratch.pointer(prepared.scratchCount)
                prepared.run(batch: batch, x: x, bias: inputs.count > 2 ? inputs[2] : nil, activation: activation, y: y, scratch: s)
                return
            }
            let s = scratch.pointer(kernels.conv2dScratch(g, batch))
            kernels.conv2d(g, batch, x, inputs[1], inputs.count > 2 ? inputs[2] : nil, activation, y, s)
        case .maxPool(let g):
            TensorKernels.maxPool2d(g, batch: inputShapes[0][0], x: x, y: y)
        case .averagePool(let g, let includePad):
            TensorKernels.averagePool2d(g, batch: inputShapes[0][0], countIncludePad: includePad, x: x, y: y)
        case .globalAveragePool(let planeSize):
            TensorKernels.globalAveragePool(planes: total, size: planeSize, x: x, y: y)
        case .unary(let f):
            TensorKernels.apply(f, count: total, x: x, y: y)
        case .softmax(_, let axis, let inner):
            TensorKernels.softmax(outer: total / (axis * inner), axis: axis, inner: inner, x: x, y: y)
        case .channelAffine(let channels, let inner):
            TensorKernels.channelAffine(
                batch: total / (channels * inner), channels: channels, inner: inner, x: x, scale: inputs[1],
                shift: inputs[2], y: y)
        case .gemm(_, let n, let k, let gm, let cShape):
            let a = inputShapes[0]
            let m = gm.transA ? a[1] : a[0]
            if cShape != nil {
                var beta = gm.beta
                TensorKernels.broadcast(.mul, a: inputs[2], aShape: inputShapes[2], b: &beta, bShape: [], y: y, yShape: [m, n])
            }
            kernels.sgemm(
                gm.transA, gm.transB, m, n, k, gm.alpha, x, a[1], inputs[1], inputShapes[1][1],
                cShape == nil ? 0 : 1, y, n)
        case .matMul(let an, let bn):
            var a = an
            if inputShapes[0].count == an.count { a = inputShapes[0] }
            let b = bn
            let m = a[a.count - 2], k = a[a.count - 1], p = b[b.count - 1]
            if b.count == 2 {
                // Every leading axis of A folds into the rows of one GEMM.
                let rows = a.reduce(1, *) / k
                kernels.sgemm(false, false, rows, p, k, 1, x, k, inputs[1], p, 0, y, p)
                return
            }
            let offsets = TensorKernels.matMulBatchOffsets(leadingA: Array(a.dropLast(2)), leadingB: Array(b.dropLast(2)))
            for (bi, (offA, offB)) in offsets.enumerated() {
                kernels.sgemm(
                    false, false, m, p, k, 1, x + offA * m * k, k, inputs[1] + offB * k * p, p, 0, y + bi * m * p, p)
            }
        case .binary(let op):
            TensorKernels.broadcast(op, a: x, aShape: inputShapes[0], b: inputs[1], bShape: inputShapes[1], y: y, yShape: outputShape)
        case .concat(let axis):
            let outer = outputShape[..<axis].reduce(1, *)
            let parts = zip(inputs, inputShapes).map { ($0, $1[axis...].reduce(1, *)) }
            TensorKernels.concat(outer: outer, parts: parts, y: y)
        case .view:
            break
        }
    }
}
