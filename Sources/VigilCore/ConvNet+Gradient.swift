package import VigilKernels

/// Reverse-mode differentiation of the net: the gradient of a weighted sum of its outputs with
/// respect to its input, for integrated gradients (`VigilGuardrails.IntegratedGradients`).
///
/// The forward pass is the one `predict` runs (same kernels, same float32 values) except that
/// every tensor is kept, and an activation fused into a convolution is applied as a separate
/// step so that its input is kept too. The backward pass visits the nodes in reverse and adds
/// each node's input gradients (`TensorKernels` backward kernels; convolution, Gemm and MatMul
/// through `KernelTable.sgemm`). Every operator the builder accepts is differentiated with
/// respect to every non-constant input; constants (weights) get no gradient.
extension ConvNet {
    /// Evaluates `samples` inputs and writes the gradient of Σₖ seeds[s, k] · output[s, k] with
    /// respect to each input into `gradient` (`samples x inputCount`), and the outputs into
    /// `outputs` (`samples x outputCount`) when given. In `.fixed` mode `samples` must be 1.
    /// Allocates its buffers per call (every tensor of the batch is kept for the backward pass).
    package func gradient(
        _ inputValues: UnsafePointer<Float>, samples n: Int, seeds: UnsafePointer<Float>,
        into gradient: UnsafeMutablePointer<Float>, outputs: UnsafeMutablePointer<Float>? = nil,
        kernels: KernelTable = .best
    ) {
        precondition(batchMode == .dynamic || n == 1, "a fixed-batch net takes one input at a time")
        guard n > 0 else { return }
        let t = tensors.count
        func shape(_ id: Int) -> [Int] {
            var s = plan.shapes[id]
            if plan.batched[id] && n != 1 { s[0] *= n }
            return s
        }
        // Which tensors depend on the input (the others are constants: no gradient).
        var live = [Bool](repeating: false, count: t)
        live[input] = true
        for (i, node) in nodes.enumerated() { live[plan.nodeOutputs[i]] = node.inputs.contains { live[$0] } }

        // One buffer for every tensor, gradient and pre-activation of this batch, reused across
        // calls (no allocation once it has grown to the largest batch).
        var total = 0
        for (i, step) in plan.steps.enumerated() {
            if case .view = step { continue }
            let count = shape(plan.nodeOutputs[i]).reduce(1, *)
            total += count * (live[plan.nodeOutputs[i]] ? 2 : 1)
            if case .conv(_, _?) = step { total += 2 * count }
        }
        gradientBuffers.withBuffers { storage, scratch in
            var cursor = storage.pointer(total)
            func allocate(_ count: Int, zeroed: Bool = true) -> UnsafeMutablePointer<Float> {
                let p = cursor
                cursor += count
                if zeroed { p.update(repeating: 0, count: count) }
                return p
            }

            // Forward, keeping every tensor. Views share their source's values and gradient.
            var value = [UnsafeMutablePointer<Float>?](repeating: nil, count: t)
            var grad = [UnsafeMutablePointer<Float>?](repeating: nil, count: t)
            var preActivation = [UnsafeMutablePointer<Float>?](repeating: nil, count: t)
            value[input] = UnsafeMutablePointer(mutating: inputValues)
            gradient.update(repeating: 0, count: n * inputCount)
            grad[input] = gradient
            for id in tensors.indices where tensors[id].kind == .constant {
                if let slot = constants.slot[id] { value[id] = constants.pointer(slot) }
            }
            for (i, step) in plan.steps.enumerated() {
                let ins = plan.nodeInputs[i], out = plan.nodeOutputs[i]
                if case .view = step {
                    value[out] = value[ins[0]]
                    grad[out] = grad[ins[0]]
                    continue
                }
                let count = shape(out).reduce(1, *)
                value[out] = allocate(count, zeroed: false)
                if live[out] { grad[out] = allocate(count) }
                var runStep = step
                var fused: TensorKernels.Unary?
                if case .conv(let g, let activation?) = step {
                    // Keep the convolution's output before its activation.
                    runStep = .conv(g, activation: nil)
                    fused = activation
                    preActivation[out] = allocate(count, zeroed: false)
                }
                let target = preActivation[out] ?? value[out]!
                Executor.run(
                    runStep, inputs: ins.map { UnsafePointer(value[$0]!) }, inputShapes: ins.map(shape), output: target,
                    outputShape: shape(out), scratch: scratch, kernels: kernels, prepared: prepared(i, for: kernels))
                if let fused { TensorKernels.apply(fused, count: count, x: target, y: value[out]!) }
            }
            if let outputs { outputs.update(from: value[output]!, count: n * outputCount) }
            guard live[output] else { return }  // The output does not depend on the input.

            // Backward.
            let seedTarget = grad[output]!
            for i in 0..<(n * outputCount) { seedTarget[i] += seeds[i] }
            for i in plan.steps.indices.reversed() {
                let step = plan.steps[i], ins = plan.nodeInputs[i], out = plan.nodeOutputs[i]
                guard live[out], let gy = grad[out] else { continue }
                let x = value[ins[0]]!
                let gx = live[ins[0]] ? grad[ins[0]] : nil
                let count = shape(out).reduce(1, *)
                switch step {
                case .view:
                    break
                case .conv(let g, let activation):
                    guard let gx else { break }
                    var gPre = UnsafePointer(gy)
                    if let activation {
                        let tmp = allocate(count)
                        TensorKernels.activationBackward(activation, count: count, x: preActivation[out]!, gy: gy, gx: tmp)
                        gPre = UnsafePointer(tmp)
                    }
                    convBackwardInput(g, batch: shape(ins[0])[0], gy: gPre, w: value[ins[1]]!, gx: gx, scratch: scratch, kernels: kernels)
                case .maxPool(let g):
                    if let gx { TensorKernels.maxPool2dBackward(g, batch: shape(ins[0])[0], x: x, y: value[out]!, gy: gy, gx: gx) }
                case .averagePool(let g, let includePad):
                    if let gx { TensorKernels.averagePool2dBackward(g, batch: shape(ins[0])[0], countIncludePad: includePad, gy: gy, gx: gx) }
                case .globalAveragePool(let planeSize):
                    if let gx { TensorKernels.globalAveragePoolBackward(planes: count, size: planeSize, gy: gy, gx: gx) }
                case .unary(let f):
                    if let gx { TensorKernels.activationBackward(f, count: count, x: x, gy: gy, gx: gx) }
                case .softmax(_, let axis, let inner):
                    if let gx {
                        TensorKernels.softmaxBackward(outer: count / (axis * inner), axis: axis, inner: inner, y: value[out]!, gy: gy, gx: gx)
                    }
                case .channelAffine(let channels, let inner):
                    if let gx {
                        TensorKernels.channelAffineBackward(
                            batch: count / (channels * inner), channels: channels, inner: inner, scale: value[ins[1]]!, gy: gy, gx: gx)
                    }
                case .gemm(_, let nOut, let k, let gm, let cShape):
                    gemmBackward(
                        gm, n: nOut, k: k, a: x, aShape: shape(ins[0]), b: value[ins[1]]!, bShape: shape(ins[1]),
                        gy: gy, ga: gx, gb: live[ins[1]] ? grad[ins[1]] : nil, kernels: kernels)
                    if cShape != nil, live[ins[2]], let gc = grad[ins[2]] {
                        var beta = gm.beta
                        TensorKernels.broadcastBackward(.mul, gy: gy, yShape: shape(out), aShape: shape(ins[2]), other: &beta, otherShape: [], ga: gc)
                    }
                case .matMul(let an, let bn):
                    var a = an
                    if shape(ins[0]).count == an.count { a = shape(ins[0]) }
                    matMulBackward(
                        a: a, b: bn, x: x, w: value[ins[1]]!, gy: gy, ga: gx, gb: live[ins[1]] ? grad[ins[1]] : nil, kernels: kernels)
                case .binary(let op):
                    let shapes = ins.map(shape)
                    for side in 0..<2 where live[ins[side]] {
                        TensorKernels.broadcastBackward(
                            op, gy: gy, yShape: shape(out), aShape: shapes[side], other: value[ins[1 - side]]!,
                            otherShape: shapes[1 - side], ga: grad[ins[side]]!)
                    }
                case .concat(let axis):
                    let outShape = shape(out)
                    let outer = outShape[..<axis].reduce(1, *)
                    let parts = ins.map { id in (grad: live[id] ? grad[id] : nil, count: shape(id)[axis...].reduce(1, *)) }
                    TensorKernels.concatBackward(outer: outer, parts: parts, gy: gy)
                }
            }
        }
    }

    /// gx += the transpose convolution of gy: per sample and group, Wᵀ · gy (an im2col-shaped
    /// matrix) scattered back by col2im; a pointwise convolution's im2col is the input itself.
    private func convBackwardInput(
        _ g: Conv2DGeometry, batch: Int, gy: UnsafePointer<Float>, w: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>,
        scratch: ScratchBuffer, kernels: KernelTable
    ) {
        let pixels = g.outPixels, k = g.patchCount, coutG = g.outChannelsPerGroup
        let col = scratch.pointer(TensorKernels.conv2dBackwardScratchCount(g))
        for s in 0..<batch {
            let gys = gy + s * g.outputCount, gxs = gx + s * g.inputCount
            for group in 0..<g.groups {
                let target = g.isPointwise ? gxs + group * k * pixels : col + group * k * pixels
                kernels.sgemm(
                    true, false, k, pixels, coutG, 1, w + group * coutG * k, k, gys + group * coutG * pixels, pixels,
                    g.isPointwise ? 1 : 0, target, pixels)
            }
            if !g.isPointwise { TensorKernels.col2imAdd(g, col: col, ldCol: pixels, gx: gxs) }
        }
    }

    /// Y = alpha · op(A) · op(B) (+ beta · C, handled by the caller): gA and gB accumulate.
    private func gemmBackward(
        _ gm: ConvNet.Gemm, n: Int, k: Int, a: UnsafePointer<Float>, aShape: [Int], b: UnsafePointer<Float>, bShape: [Int],
        gy: UnsafePointer<Float>, ga: UnsafeMutablePointer<Float>?, gb: UnsafeMutablePointer<Float>?, kernels: KernelTable
    ) {
        let m = gm.transA ? aShape[1] : aShape[0]
        let lda = aShape[1], ldb = bShape[1]
        if let ga {
            if gm.transA {
                // A is [k, m]: gA = alpha · op(B) · gYᵀ.
                kernels.sgemm(gm.transB, true, k, m, n, gm.alpha, b, ldb, gy, n, 1, ga, m)
            } else {
                // A is [m, k]: gA = alpha · gY · op(B)ᵀ.
                kernels.sgemm(false, !gm.transB, m, k, n, gm.alpha, gy, n, b, ldb, 1, ga, k)
            }
        }
        if let gb {
            if gm.transB {
                // B is [n, k]: gB = alpha · gYᵀ · op(A).
                kernels.sgemm(true, gm.transA, n, k, m, gm.alpha, gy, n, a, lda, 1, gb, k)
            } else {
                // B is [k, n]: gB = alpha · op(A)ᵀ · gY.
                kernels.sgemm(!gm.transA, false, k, n, m, gm.alpha, a, lda, gy, n, 1, gb, n)
            }
        }
    }

    /// NumPy matmul with broadcast leading axes (`a`, `b` with 1-D operands promoted, as the
    /// executor runs it): gA[i] += gY[i] · B[i]ᵀ and gB[i] += A[i]ᵀ · gY[i] for each batch i;
    /// a broadcast operand collects the sum over the batches that share it.
    private func matMulBackward(
        a: [Int], b: [Int], x: UnsafePointer<Float>, w: UnsafePointer<Float>, gy: UnsafePointer<Float>,
        ga: UnsafeMutablePointer<Float>?, gb: UnsafeMutablePointer<Float>?, kernels: KernelTable
    ) {
        let m = a[a.count - 2], k = a[a.count - 1], p = b[b.count - 1]
        if b.count == 2 {
            let rows = a.reduce(1, *) / k
            if let ga { kernels.sgemm(false, true, rows, k, p, 1, gy, p, w, p, 1, ga, k) }
            if let gb { kernels.sgemm(true, false, k, p, rows, 1, x, k, gy, p, 1, gb, p) }
            return
        }
        let offsets = TensorKernels.matMulBatchOffsets(leadingA: Array(a.dropLast(2)), leadingB: Array(b.dropLast(2)))
        for (bi, (offA, offB)) in offsets.enumerated() {
            let gyi = gy + bi * m * p
            if let ga { kernels.sgemm(false, true, m, k, p, 1, gyi, p, w + offB * k * p, p, 1, ga + offA * m * k, k) }
            if let gb { kernels.sgemm(true, false, k, p, m, 1, x + offA * m * k, k, gyi, p, 1, gb + offB * k * p, p) }
        }
    }
}
