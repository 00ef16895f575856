internal import VigilKernels

/// Builds a `ConvNet` node by node, checking everything the executor relies on: every input
/// defined before use, shapes that agree (channels, GEMM inner dimensions, broadcasting,
/// concatenation), weights of the right size and finite, attributes in range, windows that fit.
/// Output shapes are inferred as ONNX defines them. A node whose inputs are all constants is
/// evaluated here, once. Errors name the node and its operator (`node 'conv1' (Conv): ...`).
///
/// At `build` it rewrites the graph as an executor wants it: a channel affine (an inference
/// BatchNormalization) that alone reads a convolution's output is folded into the convolution's
/// weights and bias, and a Relu, LeakyRelu or Clip that alone reads it is fused into the
/// convolution's output, whichever loader added the nodes.
///
/// It also decides the batch mode: a node that would mix samples along the first axis (Softmax
/// over axis 0, Concat on axis 0, a Reshape that moves the batch axis, ...) makes the net
/// `.fixed`, which is an error when the graph declares a dynamic batch axis.
package struct ConvNetBuilder: Sendable {
    package typealias TensorID = ConvNet.TensorID

    package let inputID: TensorID
    /// Whether the graph input's first axis was declared dynamic.
    package let dynamicBatch: Bool
    package var notes: [String: String] = [:]
    /// Samples per arena in `.dynamic` mode.
    package var chunkCapacity = 32

    private(set) var tensors: [ConvNet.Tensor] = []
    private var constantData: [TensorID: [Float]] = [:]
    private var nodes: [ConvNet.Node] = []
    private var steps: [Step] = []
    private var names: [String: TensorID] = [:]
    /// The first node that mixes samples, with why.
    private var batchBreaker: String?
    /// A channel affine's scale and shift in `Double` (by its output), so that folding it into a
    /// convolution rounds once, as computing y = w * scale + shift in `Double` does.
    private var affineParameters: [TensorID: (scale: [Double], shift: [Double])] = [:]

    /// `inputShape`: the graph input's dimensions; nil is a dynamic axis, allowed only first.
    package init(inputName: String, inputShape: [Int?]) throws(VigilError) {
        guard !inputShape.isEmpty else {
            throw .modelInvalid("input '\(inputName)': a scalar input is not supported (rank >= 1 needed)")
        }
        for (i, d) in inputShape.enumerated() {
            if let d {
                guard d > 0 else { throw .modelInvalid("input '\(inputName)': dimension \(i) is \(d); sizes must be > 0") }
            } else if i > 0 {
                throw .modelInvalid("input '\(inputName)': dimension \(i) is dynamic; only the first (batch) axis may be")
            }
        }
        dynamicBatch = inputShape[0] == nil
        let shape = inputShape.map { $0 ?? 1 }
        guard Self.count(shape) != nil else {
            throw .modelInvalid("input '\(inputName)': \(shape) has more than 2^28 values per sample")
        }
        inputID = 0
        tensors.append(ConvNet.Tensor(name: inputName, shape: shape, kind: .input, isBatched: true))
        names[inputName] = 0
    }

    // MARK: - API

    package func shape(of id: TensorID) -> [Int] { tensors[id].shape }
    package func isConstant(_ id: TensorID) -> Bool { tensors[id].kind == .constant }
    package func constant(_ id: TensorID) -> [Float]? { constantData[id] }
    package func tensorID(named name: String) -> TensorID? { names[name] }

    /// Adds a constant (an initializer). Values must be finite.
    @discardableResult
    package mutating func addConstant(name: String, shape: [Int], values: [Float]) throws(VigilError) -> TensorID {
        guard names[name] == nil else { throw .modelInvalid("tensor '\(name)' is defined twice") }
        guard Self.count(shape) == values.count else {
            throw .modelInvalid("constant '\(name)': \(values.count) values for shape \(shape)")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw .modelInvalid("constant '\(name)': value \(i) is \(values[i]); weights must be finite")
        }
        let id = tensors.count
        tensors.append(ConvNet.Tensor(name: name, shape: shape, kind: .constant, isBatched: false))
        constantData[id] = values
        names[name] = id
        return id
    }

    /// Adds a node computing tensor `output` from `inputs`; returns the output's id.
    @discardableResult
    package mutating func add(
        _ operation: ConvNet.Operation, name: String, opType: String, inputs: [TensorID], output: String
    ) throws(VigilError) -> TensorID {
        let place = "node '\(name)' (\(opType))"
        func fail(_ message: String) -> VigilError { .modelInvalid("\(place): \(message)") }
        guard names[output] == nil else { throw fail("output '\(output)' is already defined") }
        for i in inputs where i < 0 || i >= tensors.count { throw fail("input id \(i) does not exist") }
        let (shape, step, breaker) = try infer(operation, inputs: inputs, fail: fail)
        guard shape.allSatisfy({ $0 > 0 }) else { throw fail("the output shape \(shape) has an empty axis") }
        guard Self.count(shape) != nil else { throw fail("the output \(shape) has more than 2^28 values") }
        let batched = inputs.contains { tensors[$0].isBatched }
        if batched {
            if let breaker, batchBreaker == nil { batchBreaker = "\(place): \(breaker)" }
            if batchBreaker == nil, shape.first != tensors[inputID].shape[0] {
                batchBreaker = "\(place): the output's first axis (\(shape.first ?? 0)) is not the batch axis"
            }
        }
        let id = tensors.count
        let allConstant = !inputs.isEmpty && inputs.allSatisfy { tensors[$0].kind == .constant }
        if allConstant {
            // Evaluate once now (Reshape of a weight, arithmetic on constants).
            let values = evaluateConstant(step, inputs: inputs, shape: shape)
            tensors.append(ConvNet.Tensor(name: output, shape: shape, kind: .constant, isBatched: false))
            constantData[id] = values
        } else {
            tensors.append(ConvNet.Tensor(name: output, shape: shape, kind: .computed, isBatched: batched))
            nodes.append(ConvNet.Node(name: name, opType: opType, operation: operation, inputs: inputs, output: id))
            steps.append(step)
        }
        names[output] = id
        return id
    }

    /// Adds y = x * scale[c] + shift[c] along axis 1 (an inference BatchNormalization: scale =
    /// gamma / sqrt(var + epsilon), shift = beta - mean * scale), keeping the `Double` values
    /// for folding into a convolution at `build`.
    @discardableResult
    package mutating func addChannelAffine(
        name: String, opType: String, input: TensorID, scale: [Double], shift: [Double], output: String
    ) throws(VigilError) -> TensorID {
        let s = try addConstant(name: "\(name)#scale", shape: [scale.count], values: scale.map { Float($0) })
        let t = try addConstant(name: "\(name)#shift", shape: [shift.count], values: shift.map { Float($0) })
        let id = try add(.channelAffine, name: name, opType: opType, inputs: [input, s, t], output: output)
        affineParameters[id] = (scale, shift)
        return id
    }

    /// Checks the output, folds and fuses into convolutions, and plans the buffers.
    package func build(output: TensorID) throws(VigilError) -> ConvNet {
        guard output >= 0, output < tensors.count else { throw .modelInvalid("the graph output does not exist") }
        guard tensors[output].kind != .constant else {
            throw .modelInvalid("the graph output '\(tensors[output].name)' is a constant; it does not depend on the input")
        }
        var rewritten = self
        try rewritten.foldIntoConvolutions(output: output)
        return try rewritten.plan(output: output)
    }

    private func plan(output: TensorID) throws(VigilError) -> ConvNet {
        let mode: ConvNet.BatchMode
        if dynamicBatch {
            if let batchBreaker {
                throw .modelInvalid("\(batchBreaker); the input's batch axis is dynamic, so samples must stay independent")
            }
            mode = .dynamic
        } else {
            mode = batchBreaker == nil && tensors[inputID].shape[0] == 1 ? .dynamic : .fixed
        }
        guard chunkCapacity >= 1 else { throw .modelInvalid("chunk capacity must be >= 1") }
        let store = ConstantStore(constantData, tensorCount: tensors.count)
        let plan = Plan(tensors: tensors, nodes: nodes, steps: steps, input: inputID, output: output)
        return ConvNet(
            tensors: tensors, nodes: nodes, input: inputID, output: output, batchMode: mode,
            chunkCapacity: mode == .dynamic ? chunkCapacity : 1, notes: notes, constants: store, plan: plan)
    }

    // MARK: - Folding and fusion

    /// Folds a channel affine that alone reads a convolution's output into the convolution
    /// (w' = w * scale[c], b' = b * scale[c] + shift[c], in `Double`, rounded once), then fuses
    /// a Relu, LeakyRelu or Clip that alone reads the result. Nothing is folded into the graph
    /// output's producer's readers (the output is read by the caller), and a fold whose weights
    /// would not be finite is left unfolded. The node keeps the convolution's name; its
    /// `opType` lists what it stands for (`Conv+BatchNormalization+Relu`).
    private mutating func foldIntoConvolutions(output: TensorID) throws(VigilError) {
        var readers: [TensorID: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for t in Set(node.inputs) { readers[t, default: []].append(i) }
        }
        // The only node reading `t`, if `t` is not the graph output and that node reads it as
        // its first input only.
        func soleReader(_ t: TensorID) -> Int? {
            guard t != output, let r = readers[t], r.count == 1, nodes[r[0]].inputs.first == t,
                  nodes[r[0]].inputs.dropFirst().allSatisfy({ $0 != t }) else { return nil }
            return r[0]
        }
        var removed = Set<Int>()
        var folded = 0, fused = 0
        for i in nodes.indices where !removed.contains(i) {
            guard case .conv(var conv) = nodes[i].operation, conv.activation == nil else { continue }
            let node = nodes[i]
            var inputs = node.inputs
            var out = node.output
            var opType = node.opType
            if let r = soleReader(out), case .channelAffine = nodes[r].operation,
               let (w, b) = foldedWeights(conv: node, affine: nodes[r]) {
                inputs = [inputs[0], appendConstant(name: "\(node.name)#weights+bn", shape: tensors[inputs[1]].shape, values: w),
                          appendConstant(name: "\(node.name)#bias+bn", shape: [b.count], values: b)]
                for old in node.inputs.dropFirst() where readers[old] == [i] { constantData[old] = nil }
                removed.insert(r)
                out = nodes[r].output
                opType += "+" + nodes[r].opType
                folded += 1
            }
            if let r = soleReader(out), case .activation(let a) = nodes[r].operation, Self.fusable(a) {
                conv.activation = a
                removed.insert(r)
                out = nodes[r].output
                opType += "+" + nodes[r].opType
                fused += 1
            }
            guard out != node.output || conv.activation != nil else { continue }
            let place = "node '\(node.name)' (\(opType))"
            let (_, step, _) = try infer(.conv(conv), inputs: inputs, fail: { VigilError.modelInvalid("\(place): \($0)") })
            nodes[i] = ConvNet.Node(name: node.name, opType: opType, operation: .conv(conv), inputs: inputs, output: out)
            steps[i] = step
        }
        guard !removed.isEmpty else { return }
        let keep = nodes.indices.filter { !removed.contains($0) }
        nodes = keep.map { nodes[$0] }
        steps = keep.map { steps[$0] }
        if folded > 0 { notes["batch norms folded into convolutions"] = String(folded) }
        if fused > 0 { notes["activations fused into convolutions"] = String(fused) }
    }

    /// The activations a convolution kernel applies to its output as it writes it.
    private static func fusable(_ a: ConvNet.Activation) -> Bool {
        switch a {
        case .relu, .leakyRelu, .clip: return true
        case .sigmoid, .tanh: return false
        }
    }

    /// A convolution's weights and bias with a channel affine on its output folded in, or nil
    /// when a value would not be finite.
    private func foldedWeights(conv: ConvNet.Node, affine: ConvNet.Node) -> (weights: [Float], bias: [Float])? {
        guard let weights = constantData[conv.inputs[1]] else { return nil }
        let channels = tensors[conv.inputs[1]].shape[0]
        let bias = conv.inputs.count > 2 ? constantData[conv.inputs[2]] : nil
        let (scale, shift): ([Double], [Double])
        if let p = affineParameters[affine.output] {
            (scale, shift) = p
        } else {
            guard let s = constantData[affine.inputs[1]], let t = constantData[affine.inputs[2]] else { return nil }
            (scale, shift) = (s.map(Double.init), t.map(Double.init))
        }
        guard scale.count == channels, shift.count == channels, channels > 0, weights.count % channels == 0 else { return nil }
        let per = weights.count / channels
        var w = weights
        var b = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            for j in 0..<per { w[c * per + j] = Float(Double(weights[c * per + j]) * scale[c]) }
            b[c] = Float(Double(bias?[c] ?? 0) * scale[c] + shift[c])
        }
        guard w.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else { return nil }
        return (w, b)
    }

    /// A constant made by a rewrite (finite values, checked by the caller).
    private mutating func appendConstant(name: String, shape: [Int], values: [Float]) -> TensorID {
        let id = tensors.count
        tensors.append(ConvNet.Tensor(name: name, shape: shape, kind: .constant, isBatched: false))
        constantData[id] = values
        if names[name] == nil { names[name] = id }
        return id
    }

    // MARK: - Shape inference

    private typealias Fail = (String) -> VigilError

    private func infer(
        _ op: ConvNet.Operation, inputs: [TensorID], fail: Fail
    ) throws(VigilError) -> (shape: [Int], step: Step, breaker: String?) {
        func arity(_ range: ClosedRange<Int>) throws(VigilError) {
            guard range.contains(inputs.count) else { throw fail("takes \(range) inputs, got \(inputs.count)") }
        }
        func requireConstant(_ i: Int, _ what: String) throws(VigilError) {
            guard tensors[inputs[i]].kind == .constant else { throw fail("\(what) '\(tensors[inputs[i]].name)' must be a constant (an initializer)") }
        }
        let x = inputs.first.map { tensors[$0] }
        switch op {
        case .conv(let c):
            try arity(2...3)
            try requireConstant(1, "the weights")
            if inputs.count == 3 { try requireConstant(2, "the bias") }
            let xs = x!.shape, ws = tensors[inputs[1]].shape
            guard xs.count == 3 || xs.count == 4 else { throw fail("input \(xs) must be [N, C, W] or [N, C, H, W] (1-D or 2-D convolution)") }
            guard ws.count == xs.count else { throw fail("weights \(ws) must have rank \(xs.count) like the input \(xs)") }
            guard c.groups >= 1, c.groups <= xs[1], xs[1] % c.groups == 0, ws[0] % c.groups == 0 else {
                throw fail("group \(c.groups) must divide the input channels \(xs[1]) and the output channels \(ws[0])")
            }
            guard ws[1] * c.groups == xs[1] else {
                throw fail("weights \(ws) read \(ws[1]) channels per group x \(c.groups) groups, but the input has \(xs[1]) channels")
            }
            if inputs.count == 3 {
                guard tensors[inputs[2]].count == ws[0], tensors[inputs[2]].shape.count == 1 else {
                    throw fail("bias \(tensors[inputs[2]].shape) must be [\(ws[0])]")
                }
            }
            var g = try window(
                input: xs, kernel: Array(ws.dropFirst(2)), strides: c.strides, dilations: c.dilations,
                padding: c.padding, ceilMode: false, fail: fail)
            g.outChannels = ws[0]
            g.groups = c.groups
            if let problem = g.validate() { throw fail(problem) }
            let shape = [xs[0], ws[0]] + (xs.count == 4 ? [g.outHeight, g.outWidth] : [g.outWidth])
            return (shape, .conv(g, activation: c.activation.map(Self.kernel)), nil)
        case .maxPool(let p), .averagePool(let p):
            try arity(1...1)
            let xs = x!.shape
            guard xs.count == 3 || xs.count == 4 else { throw fail("input \(xs) must be [N, C, W] or [N, C, H, W] (1-D or 2-D pooling)") }
            guard p.kernelShape.count == xs.count - 2 else { throw fail("kernel_shape \(p.kernelShape) must have \(xs.count - 2) values for input \(xs)") }
            var g = try window(
                input: xs, kernel: p.kernelShape, strides: p.strides, dilations: p.dilations, padding: p.padding,
                ceilMode: p.ceilMode, fail: fail)
            g.outChannels = xs[1]
            if let problem = g.validate() { throw fail(problem) }
            let shape = [xs[0], xs[1]] + (xs.count == 4 ? [g.outHeight, g.outWidth] : [g.outWidth])
            if case .maxPool = op { return (shape, .maxPool(g), nil) }
            return (shape, .averagePool(g, includePad: p.countIncludePad), nil)
        case .globalAveragePool:
            try arity(1...1)
            let xs = x!.shape
            guard xs.count >= 3 else { throw fail("input \(xs) must be [N, C, spatial...]") }
            return ([xs[0], xs[1]] + Array(repeating: 1, count: xs.count - 2), .globalAveragePool(planeSize: xs.dropFirst(2).reduce(1, *)), nil)
        case .activation(let a):
            try arity(1...1)
            if case .clip(let lo, let hi) = a, lo.isNaN || hi.isNaN { throw fail("Clip bounds must not be NaN") }
            if case .leakyRelu(let alpha) = a, !alpha.isFinite { throw fail("alpha \(alpha) must be finite") }
            return (x!.shape, .unary(Self.kernel(a)), nil)
        case .softmax(let axis, let legacy):
            try arity(1...1)
            let xs = x!.shape
            let ax = try normalize(axis: axis, rank: xs.count, fail: fail)
            let outer = xs[..<ax].reduce(1, *)
            let len = legacy ? xs[ax...].reduce(1, *) : xs[ax]
            let inner = legacy ? 1 : xs[(ax + 1)...].reduce(1, *)
            return (xs, .softmax(outer: outer, axis: len, inner: inner), ax == 0 ? "softmax over the batch axis" : nil)
        case .channelAffine:
            try arity(3...3)
            try requireConstant(1, "the scale")
            try requireConstant(2, "the shift")
            let xs = x!.shape
            guard xs.count >= 2 else { throw fail("input \(xs) must be [N, C, ...]") }
            for i in 1...2 where tensors[inputs[i]].count != xs[1] || tensors[inputs[i]].shape.count != 1 {
                throw fail("'\(tensors[inputs[i]].name)' \(tensors[inputs[i]].shape) must be [\(xs[1])] (one value per channel)")
            }
            return (xs, .channelAffine(channels: xs[1], inner: xs.dropFirst(2).reduce(1, *)), nil)
        case .gemm(let gm):
            try arity(2...3)
            let a = x!, b = tensors[inputs[1]]
            guard a.shape.count == 2, b.shape.count == 2 else { throw fail("A \(a.shape) and B \(b.shape) must be 2-D") }
            guard gm.alpha.isFinite, gm.beta.isFinite else { throw fail("alpha and beta must be finite") }
            let (m, k) = gm.transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
            let (kb, n) = gm.transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
            guard k == kb else { throw fail("A \(a.shape)\(gm.transA ? "ᵀ" : "") x B \(b.shape)\(gm.transB ? "ᵀ" : ""): inner sizes \(k) and \(kb) differ") }
            var cShape: [Int]?
            if inputs.count == 3 {
                let c = tensors[inputs[2]].shape
                guard c.count <= 2, broadcastShape([m, n], c) == [m, n] else {
                    throw fail("C \(c) does not broadcast to the output [\(m), \(n)]")
                }
                cShape = c
            }
            var breaker: String?
            if a.isBatched && gm.transA { breaker = "transA reads the batch axis as the inner dimension" }
            if b.isBatched { breaker = "B depends on the input" }
            if inputs.count == 3 {
                let c = tensors[inputs[2]]
                if c.isBatched && !a.isBatched { breaker = "C depends on the input but A does not" }
                if a.isBatched && !c.isBatched && c.shape.count == 2 && c.shape[0] != 1 { breaker = "C has one row per sample of a fixed batch" }
            }
            return ([m, n], .gemm(m: m, n: n, k: k, gm, cShape: cShape), breaker)
        case .matMul:
            try arity(2...2)
            let a = x!, b = tensors[inputs[1]]
            guard !a.shape.isEmpty, !b.shape.isEmpty else { throw fail("inputs must have rank >= 1") }
            let an = a.shape.count == 1 ? [1] + a.shape : a.shape
            let bn = b.shape.count == 1 ? b.shape + [1] : b.shape
            guard an[an.count - 1] == bn[bn.count - 2] else {
                throw fail("A \(a.shape) x B \(b.shape): inner sizes \(an[an.count - 1]) and \(bn[bn.count - 2]) differ")
            }
            guard let lead = broadcastShape(Array(an.dropLast(2)), Array(bn.dropLast(2))) else {
                throw fail("the leading axes of A \(a.shape) and B \(b.shape) do not broadcast")
            }
            var shape = lead + [an[an.count - 2], bn[bn.count - 1]]
            if a.shape.count == 1 { shape.remove(at: shape.count - 2) }
            if b.shape.count == 1 { shape.removeLast() }
            var breaker: String?
            if b.isBatched { breaker = "B depends on the input" }
            if a.isBatched && (a.shape.count == 1 || bn.count > 2) {
                breaker = "the batch axis is not A's leading axis against a 2-D B"
            }
            return (shape, .matMul(a: an, b: bn), breaker)
        case .add, .mul:
            try arity(2...2)
            let a = x!, b = tensors[inputs[1]]
            guard let shape = broadcastShape(a.shape, b.shape) else {
                throw fail("shapes \(a.shape) and \(b.shape) do not broadcast")
            }
            var breaker: String?
            if a.isBatched || b.isBatched {
                let (batched, other) = a.isBatched ? (a, b) : (b, a)
                if other.isBatched {
                    if a.shape.count != b.shape.count { breaker = "both inputs depend on the input but have different ranks" }
                } else if other.shape.count > batched.shape.count || (other.shape.count == batched.shape.count && other.shape[0] != 1) {
                    breaker = "the constant \(other.shape) spans the batch axis of \(batched.shape)"
                }
            }
            if case .add = op { return (shape, .binary(.add), breaker) }
            return (shape, .binary(.mul), breaker)
        case .concat(let axis):
            guard !inputs.isEmpty else { throw fail("needs at least one input") }
            let first = x!.shape
            let ax = try normalize(axis: axis, rank: first.count, fail: fail)
            var total = 0
            for i in inputs {
                let s = tensors[i].shape
                guard s.count == first.count else { throw fail("input '\(tensors[i].name)' \(s) has rank \(s.count), the first has \(first.count)") }
                for d in 0..<s.count where d != ax && s[d] != first[d] {
                    throw fail("input '\(tensors[i].name)' \(s) differs from \(first) on axis \(d)")
                }
                total += s[ax]
            }
            var shape = first
            shape[ax] = total
            var breaker: String?
            let batchedCount = inputs.filter { tensors[$0].isBatched }.count
            if batchedCount > 0 {
                if ax == 0 { breaker = "concatenation along the batch axis" }
                else if batchedCount != inputs.count { breaker = "a constant joined to every sample has a fixed batch" }
            }
            return (shape, .concat(axis: ax), breaker)
        case .reshape(let r):
            try arity(1...1)
            let xs = x!.shape
            let count = xs.reduce(1, *)
            switch r {
            case .identity:
                return (xs, .view, nil)
            case .flatten(let axis):
                guard axis >= -xs.count, axis <= xs.count else { throw fail("axis \(axis) is outside [-\(xs.count), \(xs.count)] for \(xs)") }
                let ax = axis < 0 ? axis + xs.count : axis
                let shape = [xs[..<ax].reduce(1, *), xs[ax...].reduce(1, *)]
                return (shape, .view, ax == 0 ? "Flatten(axis 0) merges the samples" : nil)
            case .shape(let target, let allowZero):
                var shape: [Int] = []
                var inferred: Int?
                for (i, d) in target.enumerated() {
                    switch d {
                    case -1:
                        guard inferred == nil else { throw fail("shape \(target) has more than one -1") }
                        inferred = i
                        shape.append(1)
                    case 0:
                        if allowZero {
                            throw fail("shape \(target) has a zero-size axis (allowzero); empty tensors are not supported")
                        }
                        guard i < xs.count else { throw fail("shape \(target): 0 at axis \(i) copies an axis the input \(xs) does not have") }
                        shape.append(xs[i])
                    case let v where v > 0 && v <= 1 << 28:
                        shape.append(v)
                    default:
                        throw fail("shape \(target) has the invalid size \(d)")
                    }
                }
                guard let known = Self.count(shape) else { throw fail("shape \(target) has more than 2^28 values") }
                if let i = inferred {
                    guard known > 0, count % known == 0 else { throw fail("cannot reshape \(xs) (\(count) values) to \(target)") }
                    shape[i] = count / known
                }
                guard shape.reduce(1, *) == count else { throw fail("cannot reshape \(xs) (\(count) values) to \(target) (\(shape.reduce(1, *)) values)") }
                var breaker: String?
                if let t0 = target.first, !(t0 == -1 || (t0 == 0 && !allowZero)) {
                    breaker = "shape \(target) fixes the first axis at \(t0) (use 0 or -1 to keep the batch axis)"
                }
                return (shape, .view, breaker)
            }
        }
    }

    /// Resolves a pooling or convolution window (1-D as height 1) into kernel geometry.
    private func window(
        input xs: [Int], kernel: [Int], strides: [Int]?, dilations: [Int]?, padding: ConvNet.Padding,
        ceilMode: Bool, fail: Fail
    ) throws(VigilError) -> Conv2DGeometry {
        let spatial = xs.count - 2
        let s = strides ?? Array(repeating: 1, count: spatial)
        let d = dilations ?? Array(repeating: 1, count: spatial)
        guard s.count == spatial, d.count == spatial else {
            throw fail("strides \(s) and dilations \(d) need \(spatial) values for input \(xs)")
        }
        let limit = 1 << 16
        guard kernel.allSatisfy({ $0 > 0 && $0 <= limit }), s.allSatisfy({ $0 > 0 && $0 <= limit }),
              d.allSatisfy({ $0 > 0 && $0 <= limit }) else {
            throw fail("kernel \(kernel), strides \(s) and dilations \(d) must be in 1...\(limit)")
        }
        if case .explicit(let pads) = padding, pads.contains(where: { $0 > limit }) {
            throw fail("pads \(pads) must be <= \(limit)")
        }
        let inSize = Array(xs.dropFirst(2))
        var begin = [Int](repeating: 0, count: spatial), end = begin, out = begin
        for a in 0..<spatial {
            let span = d[a] * (kernel[a] - 1) + 1
            switch padding {
            case .explicit(let pads):
                guard pads.count == 2 * spatial, pads.allSatisfy({ $0 >= 0 }) else {
                    throw fail("pads \(pads) must be \(2 * spatial) values >= 0")
                }
                begin[a] = pads[a]
                end[a] = pads[spatial + a]
                fallthrough
            case .valid:
                let room = inSize[a] + begin[a] + end[a] - span
                guard room >= 0 else {
                    throw fail("the window (\(span) wide with dilation) is larger than the padded input (\(inSize[a] + begin[a] + end[a])) on spatial axis \(a)")
                }
                if ceilMode {
                    out[a] = (room + s[a] - 1) / s[a] + 1
                    // The last window must start inside the input or its leading padding.
                    if (out[a] - 1) * s[a] >= inSize[a] + begin[a] { out[a] -= 1 }
                } else {
                    out[a] = room / s[a] + 1
                }
            case .sameUpper, .sameLower:
                out[a] = (inSize[a] + s[a] - 1) / s[a]
                let total = max(0, (out[a] - 1) * s[a] + span - inSize[a])
                let small = total / 2, large = total - total / 2
                (begin[a], end[a]) = padding == .sameUpper ? (small, large) : (large, small)
            }
        }
        // 1-D as a height-1 image.
        let h = spatial == 2 ? 0 : -1
        func pick(_ v: [Int], _ one: Int) -> Int { h == 0 ? v[0] : one }
        return Conv2DGeometry(
            inChannels: xs[1], inHeight: pick(inSize, 1), inWidth: inSize[spatial - 1], outChannels: xs[1],
            outHeight: pick(out, 1), outWidth: out[spatial - 1], kernelHeight: pick(kernel, 1),
            kernelWidth: kernel[spatial - 1], strideHeight: pick(s, 1), strideWidth: s[spatial - 1],
            dilationHeight: pick(d, 1), dilationWidth: d[spatial - 1], padTop: pick(begin, 0),
            padLeft: begin[spatial - 1], padBottom: pick(end, 0), padRight: end[spatial - 1])
    }

    /// The number of values of `shape`, or nil when a size is negative or the product exceeds
    /// 2^28 (checked as it multiplies, so a crafted shape cannot overflow).
    static func count(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0, d <= 1 << 28 else { return nil }
            n *= d
            guard n <= 1 << 28 else { return nil }
        }
        return n
    }

    private func normalize(axis: Int, rank: Int, fail: Fail) throws(VigilError) -> Int {
        guard axis >= -rank, axis < rank else { throw fail("axis \(axis) is outside [-\(rank), \(rank - 1)]") }
        return axis < 0 ? axis + rank : axis
    }

    /// The NumPy broadcast of two shapes, or nil.
    private func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            if x == y || y == 1 { out.append(x) } else if x == 1 { out.append(y) } else { return nil }
        }
        return out
    }

    static func kernel(_ a: ConvNet.Activation) -> TensorKernels.Unary {
        switch a {
        case .relu: return .relu
        case .leakyRelu(let alpha): return .leakyRelu(alpha: alpha)
        case .clip(let lo, let hi): return .clip(lower: lo, upper: hi)
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        }
    }

    private func evaluateConstant(_ step: Step, inputs: [TensorID], shape: [Int]) -> [Float] {
        let values = inputs.map { constantData[$0]! }
        if case .view = step { return values[0] }
        let shapes = inputs.map { tensors[$0].shape }
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        withPointers(values) { ptrs in
            out.withUnsafeMutableBufferPointer { o in
                let scratch = ScratchBuffer()
                Executor.run(
                    step, inputs: ptrs, inputShapes: shapes, output: o.baseAddress!, outputShape: shape,
                    scratch: scratch, kernels: .best)
            }
        }
        return out
    }
}

/// Calls `body` with stable pointers to each array's storage.
func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func go(_ i: Int, _ acc: [UnsafePointer<Float>]) -> R {
        if i == arrays.count { return body(acc) }
        return arrays[i].withUnsafeBufferPointer { go(i + 1, acc + [$0.baseAddress ?? UnsafePointer(bitPattern: 16)!]) }
    }
    return go(0, [])
}
