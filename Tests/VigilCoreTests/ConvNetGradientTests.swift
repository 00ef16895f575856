import Foundation
import Testing
@testable import VigilCore
import VigilKernels

/// The backward pass against central finite differences, operator by operator, on both kernel
/// tables. Each net ends in a fixed random projection to a scalar F; the check is on the
/// directional derivative along random directions v: ∇F·v against (F(x + εv) − F(x − εv)) / 2ε,
/// plus a few single coordinates. Nets use smooth activations (tanh, sigmoid) or random inputs
/// far from kinks and ties, so the finite difference is a fair reference in float32.
struct ConvNetGradientTests {
    typealias Rand = SplitMix64

    /// Adds a projection of `y` to one scalar (Flatten + Gemm with random weights).
    static func project(_ b: inout ConvNetBuilder, _ y: Int, rand: inout Rand) throws -> Int {
        let shape = b.shape(of: y)
        let flat = shape.count == 2 ? y : try b.add(.reshape(.flatten(axis: 1)), name: "flat", opType: "Flatten", inputs: [y], output: "flat")
        let width = b.shape(of: flat)[1]
        let w = try b.addConstant(name: "proj.w", shape: [width, 1], values: rand.floats(width))
        return try b.add(.gemm(.init()), name: "proj", opType: "Gemm", inputs: [flat, w], output: "F")
    }

    /// Checks ∇F at `samples` random inputs on both kernel tables.
    func check(
        _ net: ConvNet, samples: Int = 2, inputScale: Float = 1, epsilon: Float = 1e-2, tolerance: Double = 2e-3,
        piecewiseLinear: Bool = false, seed: UInt64 = 1, _ comment: Comment
    ) throws {
        var rand = Rand(seed: seed)
        let f = net.inputCount
        #expect(net.outputCount == 1)
        let x = rand.floats(samples * f, scale: inputScale)
        let seeds = [Float](repeating: 1, count: samples)
        for kernels in [KernelTable.best, .reference] {
            var g = [Float](repeating: .nan, count: samples * f)
            var y = [Float](repeating: .nan, count: samples)
            if net.batchMode == .dynamic {
                net.gradient(x, samples: samples, seeds: seeds, into: &g, outputs: &y, kernels: kernels)
            } else {
                for s in 0..<samples {
                    x.withUnsafeBufferPointer { xp in
                        g.withUnsafeMutableBufferPointer { gp in
                            y.withUnsafeMutableBufferPointer { yp in
                                net.gradient(xp.baseAddress! + s * f, samples: 1, seeds: seeds, into: gp.baseAddress! + s * f, outputs: yp.baseAddress! + s, kernels: kernels)
                            }
                        }
                    }
                }
            }
            // The forward values equal predict's.
            var p = [Float](repeating: 0, count: samples)
            for s in 0..<samples {
                x.withUnsafeBufferPointer { xp in
                    p.withUnsafeMutableBufferPointer { pp in net.predict(xp.baseAddress! + s * f, samples: 1, into: pp.baseAddress! + s, threads: 1, kernels: kernels) }
                }
            }
            #expect(maxDifference(p, y) <= 1e-5 * (1 + p.map { abs(Double($0)) }.max()!), "\(comment): forward")
            func value(_ input: [Float]) -> Double {
                var out: Float = 0
                input.withUnsafeBufferPointer { net.predict($0.baseAddress!, samples: 1, into: &out, threads: 1, kernels: kernels) }
                return Double(out)
            }
            var checked = 0, skipped = 0
            for s in 0..<samples {
                let xs = Array(x[(s * f)..<((s + 1) * f)]), gs = Array(g[(s * f)..<((s + 1) * f)])
                #expect(gs.allSatisfy { $0.isFinite }, "\(comment): gradient not finite")
                // Directions: two random ones and the coordinate with the largest gradient.
                // A piecewise-linear net (ReLU, LeakyReLU, Clip) is checked along single coordinates,
                // and only where F is linear across [x − εv, x + εv] (its second difference is
                // ~0): a step that crosses a kink measures nothing.
                var directions = piecewiseLinear ? [] : [rand.floats(f), rand.floats(f)]
                let byMagnitude = gs.indices.sorted { abs(gs[$0]) > abs(gs[$1]) }
                let coordinates = piecewiseLinear ? Array(byMagnitude.prefix(4)) + (0..<4).map { _ in Int(rand.unit() * Double(f)) } : [byMagnitude[0]]
                for c in coordinates {
                    var unit = [Float](repeating: 0, count: f)
                    unit[c] = 1
                    directions.append(unit)
                }
                for v in directions {
                    let plus = zip(xs, v).map { $0 + epsilon * $1 }, minus = zip(xs, v).map { $0 - epsilon * $1 }
                    let (fp, fm) = (value(plus), value(minus))
                    if piecewiseLinear && abs(fp - 2 * value(xs) + fm) > 1e-5 * max(1, abs(fp)) {
                        skipped += 1
                        continue
                    }
                    checked += 1
                    let numeric = (fp - fm) / (2 * Double(epsilon))
                    let analytic = zip(gs, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let scale = max(1, abs(numeric), gs.reduce(0.0) { $0 + abs(Double($1)) } / Double(f))
                    #expect(abs(numeric - analytic) <= tolerance * scale, "\(comment) [\(kernels.name)]: ∇F·v = \(analytic), finite difference \(numeric)")
                }
            }
            #expect(checked >= 2 * skipped, "\(comment): \(skipped) of \(checked + skipped) steps crossed a kink")
        }
    }

    func maxDifference(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
    }

    func convNet(
        cin: Int = 3, h: Int = 9, w: Int = 8, cout: Int = 4, k: Int = 3, _ c: ConvNet.Convolution, bias: Bool = true,
        then tail: ((inout ConvNetBuilder, Int) throws -> Int)? = nil, seed: UInt64 = 7
    ) throws -> ConvNet {
        var rand = Rand(seed: seed)
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, cin, h, w])
        let wt = try b.addConstant(name: "w", shape: [cout, cin / c.groups, k, k], values: rand.floats(cout * cin / c.groups * k * k, scale: 0.5))
        var inputs = [b.inputID, wt]
        if bias { inputs.append(try b.addConstant(name: "b", shape: [cout], values: rand.floats(cout))) }
        var y = try b.add(.conv(c), name: "conv", opType: "Conv", inputs: inputs, output: "y")
        if let tail { y = try tail(&b, y) }
        let out = try Self.project(&b, y, rand: &rand)
        return try b.build(output: out)
    }

    @Test func convolutionsOfEveryGeometry() throws {
        let cases: [(String, ConvNet.Convolution, Int, Int)] = [
            ("same padding", .init(padding: .explicit([1, 1, 1, 1]), activation: .tanh), 3, 1),
            ("valid, stride 2", .init(strides: [2, 2], activation: .sigmoid), 3, 1),
            ("asymmetric pads, dilation 2", .init(dilations: [2, 2], padding: .explicit([2, 0, 1, 3])), 3, 1),
            ("SAME_UPPER stride 2", .init(strides: [2, 2], padding: .sameUpper, activation: .tanh), 3, 1),
            ("groups 2 (cin 4, cout 4)", .init(padding: .explicit([1, 1, 1, 1]), groups: 2, activation: .tanh), 3, 4),
            ("pointwise", .init(activation: .tanh), 1, 1),
            ("depthwise, multiplier 2", .init(padding: .explicit([1, 1, 1, 1]), groups: 4, activation: .tanh), 3, 4),
        ]
        for (name, c, k, cin) in cases {
            let cinUsed = cin == 1 ? 3 : cin
            let cout = name.hasPrefix("depthwise") ? 8 : 4
            try check(try convNet(cin: cinUsed, cout: cout, k: k, c), "conv \(name)")
        }
    }

    @Test func fusedActivationsAwayFromTheirKinks() throws {
        // ReLU, LeakyReLU and Clip: inputs scaled so that few pre-activations sit within ε of a kink.
        for act in [ConvNet.Activation.relu, .leakyRelu(alpha: 0.1), .clip(min: -0.5, max: 0.7)] {
            let net = try convNet(.init(padding: .explicit([1, 1, 1, 1]), activation: act))
            try check(net, epsilon: 1e-3, tolerance: 5e-3, piecewiseLinear: true, "conv + \(act)")
        }
    }

    @Test func poolingGlobalPoolingAndStandaloneActivations() throws {
        let maxPool2x2 = try convNet(.init(padding: .explicit([1, 1, 1, 1]), activation: .tanh), then: { b, y in
            try b.add(.maxPool(.init(kernelShape: [2, 2], strides: [2, 2])), name: "p", opType: "MaxPool", inputs: [y], output: "p")
        })
        try check(maxPool2x2, epsilon: 1e-3, tolerance: 5e-3, "max pool 2x2 / 2")
        let maxPool3 = try convNet(.init(activation: .tanh), then: { b, y in
            try b.add(.maxPool(.init(kernelShape: [3, 3], strides: [2, 2], padding: .explicit([1, 1, 1, 1]), ceilMode: true)), name: "p", opType: "MaxPool", inputs: [y], output: "p")
        })
        try check(maxPool3, epsilon: 1e-3, tolerance: 5e-3, "max pool 3x3 / 2, pads, ceil")
        for includePad in [false, true] {
            let avg = try convNet(.init(activation: .sigmoid), then: { b, y in
                try b.add(.averagePool(.init(kernelShape: [3, 2], strides: [2, 1], padding: .explicit([1, 0, 1, 1]), ceilMode: true, countIncludePad: includePad)), name: "p", opType: "AveragePool", inputs: [y], output: "p")
            })
            try check(avg, "average pool, count_include_pad \(includePad)")
        }
        let gap = try convNet(.init(padding: .explicit([1, 1, 1, 1])), then: { b, y in
            let t = try b.add(.activation(.tanh), name: "t", opType: "Tanh", inputs: [y], output: "t")
            let s = try b.add(.activation(.sigmoid), name: "s", opType: "Sigmoid", inputs: [t], output: "s")
            return try b.add(.globalAveragePool, name: "g", opType: "GlobalAveragePool", inputs: [s], output: "g")
        })
        try check(gap, "tanh, sigmoid, global average pool")
        let leaky = try convNet(.init(), then: { b, y in
            try b.add(.activation(.leakyRelu(alpha: 0.2)), name: "l", opType: "LeakyRelu", inputs: [y], output: "l")
        })
        try check(leaky, epsilon: 1e-3, tolerance: 5e-3, "standalone LeakyRelu")
    }

    @Test func residualAddMulConcatAffineAndSoftmax() throws {
        var rand = Rand(seed: 3)
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 2, 5, 5])
        let w = try b.addConstant(name: "w", shape: [2, 2, 3, 3], values: rand.floats(36, scale: 0.5))
        let c = try b.add(.conv(.init(padding: .explicit([1, 1, 1, 1]), activation: .tanh)), name: "c", opType: "Conv", inputs: [b.inputID, w], output: "c")
        // A residual: the input reaches the sum along two paths.
        let sum = try b.add(.add, name: "res", opType: "Add", inputs: [c, b.inputID], output: "res")
        let scale = try b.addConstant(name: "s", shape: [1, 2, 1, 1], values: [1.5, -0.5])
        let mul = try b.add(.mul, name: "mul", opType: "Mul", inputs: [sum, scale], output: "mul")
        // x * x: one tensor on both sides of a Mul.
        let square = try b.add(.mul, name: "sq", opType: "Mul", inputs: [c, c], output: "sq")
        let cat = try b.add(.concat(axis: 1), name: "cat", opType: "Concat", inputs: [mul, square, b.inputID], output: "cat")
        let affine = try b.add(.channelAffine, name: "bn", opType: "BatchNormalization", inputs: [
            cat, try b.addConstant(name: "g", shape: [6], values: rand.floats(6)), try b.addConstant(name: "h", shape: [6], values: rand.floats(6)),
        ], output: "bn")
        let soft = try b.add(.softmax(axis: 1, legacy: false), name: "sm", opType: "Softmax", inputs: [affine], output: "sm")
        let projected = try Self.project(&b, soft, rand: &rand)
        let net = try b.build(output: projected)
        try check(net, "residual add, broadcast mul, x*x, concat, channel affine, softmax")
    }

    @Test func gemmInEveryTranspositionAndMatMul() throws {
        var rand = Rand(seed: 11)
        // Gemm with transB and a broadcast C, then a fixed-batch Gemm with transA.
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 6])
        let w = try b.addConstant(name: "w", shape: [5, 6], values: rand.floats(30))
        let c = try b.addConstant(name: "c", shape: [5], values: rand.floats(5))
        let g = try b.add(.gemm(.init(alpha: 0.7, beta: 1.3, transB: true)), name: "g", opType: "Gemm", inputs: [b.inputID, w, c], output: "g")
        let t = try b.add(.activation(.tanh), name: "t", opType: "Tanh", inputs: [g], output: "t")
        let m = try b.addConstant(name: "m", shape: [5, 4], values: rand.floats(20))
        let mm = try b.add(.matMul, name: "mm", opType: "MatMul", inputs: [t, m], output: "mm")
        let projected = try Self.project(&b, mm, rand: &rand)
        try check(try b.build(output: projected), "Gemm transB with C, MatMul")

        var f = try ConvNetBuilder(inputName: "x", inputShape: [6, 3])
        let wa = try f.addConstant(name: "w", shape: [6, 4], values: rand.floats(24))
        // transA: op(A) = xᵀ [3, 6]; B = w [6, 4]; then a Gemm whose B is the computed tensor.
        let ga = try f.add(.gemm(.init(transA: true)), name: "ga", opType: "Gemm", inputs: [f.inputID, wa], output: "ga")
        let s = try f.add(.activation(.sigmoid), name: "s", opType: "Sigmoid", inputs: [ga], output: "s")
        let left = try f.addConstant(name: "l", shape: [2, 3], values: rand.floats(6))
        let gb = try f.add(.gemm(.init()), name: "gb", opType: "Gemm", inputs: [left, s], output: "gb")
        let flat = try f.add(.reshape(.shape([1, 8], allowZero: false)), name: "r", opType: "Reshape", inputs: [gb], output: "r")
        let proj = try f.addConstant(name: "p", shape: [8, 1], values: rand.floats(8))
        let out = try f.add(.gemm(.init()), name: "out", opType: "Gemm", inputs: [flat, proj], output: "F")
        let fixed = try f.build(output: out)
        #expect(fixed.batchMode == .fixed)
        try check(fixed, samples: 1, "Gemm transA, Gemm with a computed B, fixed batch")

        // Batched MatMul broadcasting a computed [2, 3, 4] against a constant [4, 2].
        // (A fixed-shape net: a dynamic batch refuses a MatMul that pairs samples with B's batches.)
        var h = try ConvNetBuilder(inputName: "x", inputShape: [2, 3, 4])
        let k = try h.addConstant(name: "k", shape: [1, 4, 2], values: rand.floats(8))
        let bm = try h.add(.matMul, name: "bm", opType: "MatMul", inputs: [h.inputID, k], output: "bm")
        let th = try h.add(.activation(.tanh), name: "th", opType: "Tanh", inputs: [bm], output: "th")
        let k2 = try h.addConstant(name: "k2", shape: [2, 2, 3], values: rand.floats(12))
        // A computed A against a constant B of two batches, then a constant A against computed B.
        let bm2 = try h.add(.matMul, name: "bm2", opType: "MatMul", inputs: [k2, th], output: "bm2")
        let flatH = try h.add(.reshape(.shape([1, 8], allowZero: false)), name: "r", opType: "Reshape", inputs: [bm2], output: "r")
        let ph = try h.addConstant(name: "ph", shape: [8, 1], values: rand.floats(8))
        let outH = try h.add(.gemm(.init()), name: "outH", opType: "Gemm", inputs: [flatH, ph], output: "F")
        try check(try h.build(output: outH), samples: 1, "broadcast batched MatMul, computed A and computed B")
    }

    @Test func theOutputSeedsWeightEachOutput() throws {
        // F has 3 outputs; seeds (0, 1, 0) must give the gradient of output 1 alone, which for a
        // plain Gemm is its weight column.
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 4])
        let w = try b.addConstant(name: "w", shape: [4, 3], values: (0..<12).map { Float($0) })
        let y = try b.add(.gemm(.init()), name: "g", opType: "Gemm", inputs: [b.inputID, w], output: "y")
        let net = try b.build(output: y)
        var g = [Float](repeating: 0, count: 8)
        net.gradient([1, 2, 3, 4, 5, 6, 7, 8], samples: 2, seeds: [0, 1, 0, 0, 0, 2], into: &g)
        #expect(g == [1, 4, 7, 10, 4, 10, 16, 22])
    }
}
