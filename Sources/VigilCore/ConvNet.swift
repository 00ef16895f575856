internal import VigilKernels

/// A feed-forward graph of float32 tensor operators, in ONNX semantics: a CNN (convolutions,
/// pooling, batch normalization folded into the convolutions, residual additions, a dense
/// head) or an MLP. Built only through `ConvNetBuilder`, which checks every shape and attribute
/// and plans the buffers once; evaluated by `ConvNet+Evaluate.swift`.
///
/// Batch axis: the graph input's first axis is the batch when it is dynamic (`dim_param`) or 1
/// and no operator mixes samples (`batchMode == .dynamic`): the net then scores any number of
/// samples, split into chunks of `chunkCapacity` per thread. Otherwise (`.fixed`) it takes
/// exactly the input shape it declares (ONNX's node tests, a graph that reshapes across
/// samples).
///
/// Numerical contract: rounding (equal to the reference up to the rounding of reordered sums, not bit
/// for bit). Values are float32 as in onnxruntime; GEMM paths
/// (convolution, Gemm, MatMul) round in OpenBLAS's summation order, reductions sum in `Double`
/// (`TensorKernels`); a batch normalization folded into its convolution scales the weights in
/// `Double` and rounds them once. Results equal onnxruntime's within a few float ulps of each
/// dot product, and the reference kernels' within the same.
package struct ConvNet: Sendable {
    package typealias TensorID = Int

    /// A tensor of the graph. `shape` is the static shape with a batched tensor's first axis at
    /// its one-sample size (always 1 in `.dynamic` mode).
    package struct Tensor: Sendable, Equatable {
        package enum Kind: Sendable, Equatable {
            case input
            case constant
            /// Computed by a node.
            case computed
        }

        package let name: String
        package let shape: [Int]
        package let kind: Kind
        /// Whether the first axis grows with the number of samples.
        package let isBatched: Bool

        package var count: Int { shape.reduce(1, *) }
    }

    /// An activation, standalone or fused into a convolution.
    package enum Activation: Sendable, Equatable, CustomStringConvertible {
        case relu
        case leakyRelu(alpha: Float)
        case clip(min: Float, max: Float)
        case sigmoid
        case tanh

        package var description: String {
            switch self {
            case .relu: return "Relu"
            case .leakyRelu(let a): return "LeakyRelu(alpha \(a))"
            case .clip(let lo, let hi): return "Clip[\(lo), \(hi)]"
            case .sigmoid: return "Sigmoid"
            case .tanh: return "Tanh"
            }
        }
    }

    /// How a window is padded (ONNX `pads` / `auto_pad`), resolved against the input shape by
    /// the builder.
    package enum Padding: Sendable, Equatable {
        /// ONNX order: the begin of each spatial axis, then the end of each.
        case explicit([Int])
        /// Total padding so that out = ceil(in / stride), the odd extra at the end (SAME_UPPER)
        /// or at the beginning (SAME_LOWER).
        case sameUpper
        case sameLower
        /// No padding (VALID, or NOTSET without pads).
        case valid
    }

    /// Convolution attributes over 1 or 2 spatial axes; weights `[Cout, Cin / groups, k...]` and
    /// the optional bias `[Cout]` are the node's constant inputs.
    package struct Convolution: Sendable, Equatable {
        package var strides: [Int]?
        package var dilations: [Int]?
        package var padding: Padding
        package var groups: Int
        /// An activation applied to the output (fused `Relu`, `LeakyRelu` or `Clip`).
        package var activation: Activation?

        package init(strides: [Int]? = nil, dilations: [Int]? = nil, padding: Padding = .valid, groups: Int = 1, activation: Activation? = nil) {
            self.strides = strides
            self.dilations = dilations
            self.padding = padding
            self.groups = groups
            self.activation = activation
        }
    }

    /// MaxPool / AveragePool attributes over 1 or 2 spatial axes.
    package struct Pooling: Sendable, Equatable {
        package var kernelShape: [Int]
        package var strides: [Int]?
        package var dilations: [Int]?
        package var padding: Padding
        /// Output size rounds up (a last partial window), as ONNX `ceil_mode`.
        package var ceilMode: Bool
        /// AveragePool only: padding taps count in the divisor.
        package var countIncludePad: Bool

        package init(kernelShape: [Int], strides: [Int]? = nil, dilations: [Int]? = nil, padding: Padding = .valid, ceilMode: Bool = false, countIncludePad: Bool = false) {
            self.kernelShape = kernelShape
            self.strides = strides
            self.dilations = dilations
            self.padding = padding
            self.ceilMode = ceilMode
            self.countIncludePad = countIncludePad
        }
    }

    /// Y = alpha * op(A) * op(B) + beta * C (ONNX Gemm); C optional, unidirectionally broadcast.
    package struct Gemm: Sendable, Equatable {
        package var alpha: Float = 1
        package var beta: Float = 1
        package var transA = false
        package var transB = false

        package init(alpha: Float = 1, beta: Float = 1, transA: Bool = false, transB: Bool = false) {
            self.alpha = alpha
            self.beta = beta
            self.transA = transA
            self.transB = transB
        }
    }

    /// A change of shape that keeps the data (a view, no copy).
    package enum Reshape: Sendable, Equatable {
        /// ONNX Reshape: 0 copies the input's axis (unless `allowZero`), -1 is inferred.
        case shape([Int], allowZero: Bool)
        /// ONNX Flatten: `[prod(d[..<axis]), prod(d[axis...])]`.
        case flatten(axis: Int)
        /// Identity, or Dropout at inference.
        case identity
    }

    package enum Operation: Sendable, Equatable {
        /// Inputs: x, weights, bias (optional).
        case conv(Convolution)
        case maxPool(Pooling)
        case averagePool(Pooling)
        case globalAveragePool
        case activation(Activation)
        /// Softmax along `axis`; `legacy` (opset < 13) flattens to 2-D at `axis` first.
        case softmax(axis: Int, legacy: Bool)
        /// y = x * scale[c] + shift[c] along axis 1: a batch normalization with nothing to fold
        /// into. Inputs: x, scale, shift.
        case channelAffine
        /// Inputs: A, B, C (optional).
        case gemm(Gemm)
        /// ONNX MatMul (NumPy semantics, broadcasting leading axes).
        case matMul
        case add
        case mul
        case concat(axis: Int)
        case reshape(Reshape)
    }

    package struct Node: Sendable {
        package let name: String
        /// The ONNX operators this node stands for, e.g. `Conv+BatchNormalization+Relu`.
        package let opType: String
        package let operation: Operation
        package let inputs: [TensorID]
        package let output: TensorID
    }

    package enum BatchMode: Sendable, Equatable {
        /// The first input axis is the batch: any number of samples.
        case dynamic
        /// Exactly the declared input shape, one call at a time.
        case fixed
    }

    package let tensors: [Tensor]
    /// The nodes in execution order (nodes whose inputs were all constants were evaluated at
    /// load and are not here).
    package let nodes: [Node]
    package let input: TensorID
    package let output: TensorID
    package let batchMode: BatchMode
    /// Samples per buffer arena (per thread) in `.dynamic` mode; 1 in `.fixed` mode.
    package let chunkCapacity: Int
    /// Free-form facts the loader wants `inspect` to show (opset, producer, folded nodes).
    package let notes: [String: String]

    let constants: ConstantStore
    let plan: Plan
    let arenas: ArenaPool
    /// Buffers of `gradient` (every tensor of a batch and its gradient), reused across calls.
    let gradientBuffers = ScratchPool()
    /// Per step: the convolution's weights prepared at load by `KernelTable.best` for a faster
    /// kernel (`PreparedConv2D`), or nil. Used only when evaluating with that table, so the
    /// reference table stays the plain twin.
    let prepared: [PreparedConv2D?]

    init(
        tensors: [Tensor], nodes: [Node], input: TensorID, output: TensorID, batchMode: BatchMode,
        chunkCapacity: Int, notes: [String: String], constants: ConstantStore, plan: Plan
    ) {
        self.tensors = tensors
        self.nodes = nodes
        self.input = input
        self.output = output
        self.batchMode = batchMode
        self.chunkCapacity = chunkCapacity
        self.notes = notes
        self.constants = constants
        self.plan = plan
        self.arenas = ArenaPool(floats: plan.arenaFloatsPerSample * chunkCapacity)
        self.prepared = plan.steps.indices.map { i in
            guard case .conv(let g, _) = plan.steps[i], plan.nodeInputs[i].count > 1,
                case .constant(let id) = plan.storage[plan.nodeInputs[i][1]], let slot = constants.slot[id]
            else { return nil }
            return KernelTable.best.prepareConv2d(g, constants.pointer(slot))
        }
    }

    /// How node `i` is computed on this CPU with the default kernels, for a convolution ("Winograd
    /// F(4x4, 3x3), AVX2", "direct loops, AVX2", "im2col + sgemm", "depthwise loops",
    /// "sgemm (1x1)"); nil for other operators.
    package func convolutionKernel(ofNode i: Int) -> String? {
        guard case .conv(let g, _) = plan.steps[i] else { return nil }
        if let p = prepared[i] { return p.kernelName }
        switch BLAS.ConvLowering.choose(g, batch: chunkCapacity) {
        case .depthwise: return "depthwise loops"
        case .perSample, .batched: return g.isPointwise ? "sgemm (1x1)" : "im2col + sgemm"
        }
    }

    /// `prepared[step]` when evaluating with `kernels`.
    func prepared(_ step: Int, for kernels: KernelTable) -> PreparedConv2D? {
        kernels.name == KernelTable.best.name ? prepared[step] : nil
    }

    /// The input's shape for one sample (without the batch axis in `.dynamic` mode; the whole
    /// declared shape in `.fixed` mode).
    package var sampleInputShape: [Int] {
        batchMode == .dynamic ? Array(tensors[input].shape.dropFirst()) : tensors[input].shape
    }

    /// The output's shape for one sample, like `sampleInputShape`.
    package var sampleOutputShape: [Int] {
        batchMode == .dynamic ? Array(tensors[output].shape.dropFirst()) : tensors[output].shape
    }

    /// Input floats per sample (the model's "features": a flattened image).
    package var inputCount: Int { tensors[input].count }
    /// Output floats per sample.
    package var outputCount: Int { tensors[output].count }

    /// Elements of the constant tensors the nodes read (weights after folding).
    package var parameterCount: Int {
        var seen = Set<TensorID>()
        for n in nodes { for i in n.inputs where tensors[i].kind == .constant { seen.insert(i) } }
        return seen.reduce(0) { $0 + tensors[$1].count }
    }

    /// The values of a constant tensor.
    package func constantValues(_ id: TensorID) -> [Float]? {
        guard tensors[id].kind == .constant, let slot = constants.slot[id] else { return nil }
        return Array(UnsafeBufferPointer(start: constants.pointer(slot), count: tensors[id].count))
    }
}
