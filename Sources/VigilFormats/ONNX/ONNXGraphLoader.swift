package import Foundation
internal import ONNXProto
internal import SwiftProtobuf
package import VigilCore

/// Reads an ONNX graph of float32 operators (a CNN exported by PyTorch, an MLP, ONNX's node
/// tests) into a checked `ConvNet`.
///
/// Operators (default domain, opsets 7 to 24): Conv (pads, auto_pad, strides, dilations,
/// groups), BatchNormalization (inference: a per-channel scale and shift), Relu, LeakyRelu,
/// Clip, Sigmoid, Tanh, Softmax, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape,
/// Gemm, MatMul, Add, Mul, Concat, Dropout and Identity (inference: a view), Constant. The
/// loader adds one builder node per ONNX node; `ConvNetBuilder` folds batch norms into the
/// convolutions before them and fuses activations into them. Anything else (an operator, an attribute or a value
/// outside this, a tensor stored as external data, a non-float input) is refused with a
/// message naming the node and its operator.
package struct ONNXGraphLoader: Sendable {
    package let fileName: String

    package static let supportedOperators: [String] = [
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Softmax", "MaxPool",
        "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Mul", "Concat",
        "Dropout", "Identity", "Constant",
    ]
    package static let opsets: ClosedRange<Int> = 7...24

    package init(fileName: String = "model.onnx") {
        self.fileName = fileName
    }

    /// The whole graph, its last operator included (conformance tests compare every output).
    package func loadGraph(data: Data) throws -> ConvNet {
        try load(data: data, link: false).net
    }

    /// A model for scoring: a final Sigmoid (one output) or Softmax (over the last axis) becomes
    /// the objective's link and is not part of the net, which then computes margins; without one
    /// the single output is a regression.
    package func loadModel(data: Data) throws -> (net: ConvNet, objective: Objective) {
        let (net, objective) = try load(data: data, link: true)
        guard net.batchMode == .dynamic || net.tensors[net.input].shape[0] == 1 else {
            throw VigilError.modelFormat(fileName, at: "graph.input", "the input has a fixed batch of \(net.tensors[net.input].shape[0]) samples; export the model with a dynamic (or unit) batch axis")
        }
        return (net, objective ?? .regression)
    }

    /// Whether every operator in `data` is one the linear loader reads (used to choose whose
    /// error to report when neither loader accepts a file). Unparseable data counts as linear.
    package static func usesOnlyLinearOperators(_ data: Data) -> Bool {
        guard let model = try? Onnx_ModelProto(serializedBytes: data) else { return true }
        let linear: Set<String> = [
            "MatMul", "Gemm", "Add", "Sigmoid", "Softmax", "Identity", "Cast", "ZipMap", "Div", "ReduceSum", "Abs",
            "LinearClassifier", "LinearRegressor", "Normalizer",
        ]
        return model.graph.node.allSatisfy { linear.contains($0.opType) }
    }

    // MARK: - Graph walk

    private func load(data: Data, link: Bool) throws -> (net: ConvNet, objective: Objective?) {
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw VigilError.modelFormat(fileName, at: "protobuf", "not a valid ONNX model (truncated or corrupt): \(error)")
        }
        guard model.hasGraph, !model.graph.node.isEmpty else {
            throw VigilError.modelFormat(fileName, at: "graph", "the model has no graph nodes (not an ONNX model, or truncated)")
        }
        let opsets = model.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard let opset = opsets.first.map({ Int($0.version) }) else {
            throw VigilError.modelFormat(fileName, at: "opset_import", "no opset for the default ONNX domain")
        }
        guard Self.opsets.contains(opset) else {
            throw VigilError.modelFormat(fileName, at: "opset_import", "opset \(opset) is not supported (\(Self.opsets.lowerBound) to \(Self.opsets.upperBound) are)")
        }
        // Unsupported operators first: the most useful thing to say about a graph Vigil cannot run.
        for node in model.graph.node {
            let known = (node.domain.isEmpty || node.domain == "ai.onnx") && Self.supportedOperators.contains(node.opType)
            guard known else {
                let op = node.domain.isEmpty ? node.opType : "\(node.domain).\(node.opType)"
                throw VigilError.modelFormat(
                    fileName, at: "node '\(node.name)' (\(node.opType))",
                    "operator '\(op)' is not supported (\(Self.supportedOperators.joined(separator: ", ")) are)")
            }
        }
        var walker = try Walker(graph: model.graph, opset: opset, file: fileName)
        walker.builder.notes = [
            "opset": String(opset),
            "producer": [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " "),
        ]
        return try walker.run(link: link)
    }
}

/// One pass over the nodes in file order (ONNX requires topological order), feeding the builder.
private struct Walker {
    let file: String
    let opset: Int
    let graph: Onnx_GraphProto
    var builder: ConvNetBuilder
    var initializers: [String: Onnx_TensorProto] = [:]
    /// Tensor name -> builder id.
    var ids: [String: Int] = [:]
    /// Tensor name -> indices of the nodes that read it.
    var readers: [String: [Int]] = [:]
    let graphOutputs: Set<String>
    var fileParameters = 0
    var counted = Set<String>()

    init(graph: Onnx_GraphProto, opset: Int, file: String) throws {
        self.file = file
        self.opset = opset
        self.graph = graph
        var inits: [String: Onnx_TensorProto] = [:]
        for t in graph.initializer { inits[t.name] = t }
        initializers = inits
        let inputs = graph.input.filter { inits[$0.name] == nil }
        guard inputs.count == 1 else {
            throw VigilError.modelFormat(file, at: "graph.input", "exactly one input tensor is supported; found \(inputs.count) (\(inputs.map(\.name).joined(separator: ", ")))")
        }
        let input = inputs[0]
        guard case .tensorType(let tt)? = input.type.value else {
            throw VigilError.modelFormat(file, at: "input '\(input.name)'", "must be a tensor")
        }
        guard tt.elemType == 1 else {
            throw VigilError.modelFormat(file, at: "input '\(input.name)'", "element type \(tt.elemType) is not supported (float32 is)")
        }
        guard tt.hasShape else {
            throw VigilError.modelFormat(file, at: "input '\(input.name)'", "has no shape; Vigil needs the input's rank and sizes")
        }
        // A symbolic or unknown size is dynamic; a stated size must be > 0.
        var dims: [Int?] = []
        for (i, d) in tt.shape.dim.enumerated() {
            if case .dimValue(let v)? = d.value {
                guard v > 0, v <= 1 << 28 else {
                    throw VigilError.modelFormat(file, at: "input '\(input.name)'", "dimension \(i) is \(v); sizes must be in 1...2^28")
                }
                dims.append(Int(v))
            } else {
                dims.append(nil)
            }
        }
        do {
            builder = try ConvNetBuilder(inputName: input.name, inputShape: dims)
        } catch {
            throw VigilError(error.kind, "\(file): \(error.message)")
        }
        ids[input.name] = builder.inputID
        guard graph.output.count == 1 else {
            throw VigilError.modelFormat(file, at: "graph.output", "exactly one output is supported; found \(graph.output.count) (\(graph.output.map(\.name).joined(separator: ", ")))")
        }
        graphOutputs = [graph.output[0].name]
        for (i, node) in graph.node.enumerated() {
            for name in node.input where !name.isEmpty { readers[name, default: []].append(i) }
        }
    }

    func fail(_ node: Onnx_NodeProto, _ message: String) -> VigilError {
        .modelFormat(file, at: "node '\(node.name)' (\(node.opType))", message)
    }

    mutating func run(link: Bool) throws -> (net: ConvNet, objective: Objective?) {
        let outputName = graph.output[0].name
        var linkNode: Int?
        var objective: Objective?
        if link, let i = graph.node.lastIndex(where: { $0.output.contains(outputName) }),
           ["Sigmoid", "Softmax"].contains(graph.node[i].opType), graph.node[i].domain.isEmpty || graph.node[i].domain == "ai.onnx" {
            linkNode = i
        }
        for (i, node) in graph.node.enumerated() where i != linkNode {
            do {
                try add(node, index: i)
            } catch let e as VigilError where e.kind == .modelInvalid {
                throw VigilError(e.kind, "\(file): \(e.message)")
            }
        }
        var outputID: Int
        if let l = linkNode {
            let node = graph.node[l]
            guard let id = ids[node.input.first ?? ""] else { throw fail(node, "its input is not computed by the graph") }
            outputID = id
            let shape = builder.shape(of: id)
            let perSample = builder.dynamicBatch || shape.first == 1 ? shape.dropFirst().reduce(1, *) : shape.reduce(1, *)
            if node.opType == "Sigmoid" {
                try checkAttributes(node, allowed: [])
                guard perSample == 1 else {
                    throw fail(node, "a final Sigmoid over \(perSample) outputs (multi-label) is not supported; Vigil reads one risk")
                }
                objective = .binaryLogistic(scale: 1)
            } else {
                try checkAttributes(node, allowed: ["axis"])
                let axis = Int(attribute(node, "axis")?.i ?? (opset < 13 ? 1 : -1))
                let rank = shape.count
                let normalized = axis < 0 ? axis + rank : axis
                let covers = opset < 13 ? normalized == 1 : (normalized == rank - 1 && shape.dropFirst().dropLast().allSatisfy { $0 == 1 })
                guard rank >= 2, covers, perSample >= 2 else {
                    throw fail(node, "a final Softmax must run over the class axis of an [N, classes] output; shape \(shape), axis \(axis)")
                }
                objective = .multiclassSoftmax(classes: perSample)
            }
        } else {
            guard let id = ids[outputName] else {
                throw VigilError.modelFormat(file, at: "graph.output", "output '\(outputName)' is not computed by any node")
            }
            outputID = id
        }
        builder.notes["initializer values read"] = String(fileParameters)
        if let l = linkNode { builder.notes["link"] = "\(graph.node[l].opType) '\(graph.node[l].name)' applied as the objective" }
        do {
            return (try builder.build(output: outputID), objective)
        } catch {
            throw VigilError(error.kind, "\(file): \(error.message)")
        }
    }

    // MARK: - Tensors

    /// The builder id of a node input: computed earlier, the graph input, or an initializer
    /// (added on first use).
    mutating func tensor(_ name: String, for node: Onnx_NodeProto) throws -> Int {
        if let id = ids[name] { return id }
        guard let proto = initializers[name] else {
            throw fail(node, "input '\(name)' is not the graph input, an initializer or the output of an earlier node (the nodes must be in topological order)")
        }
        let (shape, values) = try floatTensor(proto, for: node)
        if counted.insert(name).inserted { fileParameters += values.count }
        let id = try builder.addConstant(name: name, shape: shape, values: values)
        ids[name] = id
        return id
    }

    func floatTensor(_ proto: Onnx_TensorProto, for node: Onnx_NodeProto) throws -> ([Int], [Float]) {
        guard proto.dataType == 1 else {
            throw fail(node, "tensor '\(proto.name)' has element type \(proto.dataType); float32 tensors are supported here")
        }
        let t = try ONNXTensor(proto, file: file)
        return (t.dims, t.values.map { Float($0) })
    }

    /// A constant float tensor (an initializer or a constant computed earlier), read without
    /// adding it to the net (Conv weights are rewritten before they are added).
    mutating func constantTensor(_ name: String, for node: Onnx_NodeProto, what: String) throws -> (shape: [Int], values: [Float]) {
        if let id = ids[name] {
            guard let v = builder.constant(id) else { throw fail(node, "\(what) '\(name)' must be a constant (an initializer)") }
            return (builder.shape(of: id), v)
        }
        guard let proto = initializers[name] else { throw fail(node, "\(what) '\(name)' must be a constant (an initializer)") }
        let t = try floatTensor(proto, for: node)
        if counted.insert(name).inserted { fileParameters += t.1.count }
        return t
    }

    mutating func constantFloats(_ name: String, for node: Onnx_NodeProto, what: String) throws -> [Float] {
        try constantTensor(name, for: node, what: what).values
    }

    /// A bool initializer's values (raw bytes or int32_data).
    func booleans(_ proto: Onnx_TensorProto) -> [Bool]? {
        guard proto.dataType == 9, proto.dataLocation != .external else { return nil }
        if !proto.rawData.isEmpty { return proto.rawData.map { $0 != 0 } }
        return proto.int32Data.map { $0 != 0 }
    }

    /// An int64 initializer (Reshape's shape), from the initializers or a Constant node.
    func int64Constant(_ name: String, for node: Onnx_NodeProto) throws -> [Int] {
        guard let proto = initializers[name] else {
            throw fail(node, "'\(name)' must be a constant int64 initializer (shapes computed at run time are not supported)")
        }
        guard proto.dataType == 7 else { throw fail(node, "'\(name)' has element type \(proto.dataType); int64 is expected") }
        // Int64 values travel as Double; Int(_:) of 2^63 traps, so convert checked.
        return try ONNXTensor(proto, file: file).values.map { v in
            guard let i = Untrusted.integer(v, in: -Self.maxAttributeMagnitude...Self.maxAttributeMagnitude) else {
                throw fail(node, "'\(name)' holds \(v), outside \(-Self.maxAttributeMagnitude)...\(Self.maxAttributeMagnitude)")
            }
            return i
        }
    }

    // MARK: - Attributes

    /// Largest magnitude of an integer attribute or shape value (strides, pads, axes, groups,
    /// Reshape sizes): larger ones are refused before the builder multiplies them.
    static let maxAttributeMagnitude = 1 << 30

    func attribute(_ node: Onnx_NodeProto, _ name: String) -> Onnx_AttributeProto? {
        node.attribute.first { $0.name == name }
    }

    func checkAttributes(_ node: Onnx_NodeProto, allowed: Set<String>) throws {
        var seen = Set<String>()
        for a in node.attribute {
            guard allowed.contains(a.name) else {
                throw fail(node, "attribute '\(a.name)' is not supported (\(allowed.isEmpty ? "none are" : allowed.sorted().joined(separator: ", ") + " are"))")
            }
            guard seen.insert(a.name).inserted else { throw fail(node, "attribute '\(a.name)' appears more than once") }
        }
    }

    func ints(_ node: Onnx_NodeProto, _ name: String) throws -> [Int]? {
        guard let a = attribute(node, name) else { return nil }
        guard a.type == .ints || (a.type == .undefined && !a.ints.isEmpty) else { throw fail(node, "attribute '\(name)' must be a list of integers") }
        guard a.ints.count <= 64, a.ints.allSatisfy({ $0.magnitude <= UInt64(Self.maxAttributeMagnitude) }) else {
            throw fail(node, "attribute '\(name)' must hold at most 64 integers of magnitude <= \(Self.maxAttributeMagnitude) (sizes, strides, pads, axes)")
        }
        return a.ints.map { Int($0) }
    }

    func int(_ node: Onnx_NodeProto, _ name: String, default value: Int) throws -> Int {
        guard let a = attribute(node, name) else { return value }
        guard a.type == .int || a.type == .undefined else { throw fail(node, "attribute '\(name)' must be an integer") }
        guard a.i.magnitude <= UInt64(Self.maxAttributeMagnitude) else {
            throw fail(node, "attribute '\(name)' = \(a.i) must have magnitude <= \(Self.maxAttributeMagnitude)")
        }
        return Int(a.i)
    }

    func float(_ node: Onnx_NodeProto, _ name: String, default value: Float) throws -> Float {
        guard let a = attribute(node, name) else { return value }
        guard a.type == .float || a.type == .undefined else { throw fail(node, "attribute '\(name)' must be a float") }
        return a.f
    }

    func bool(_ node: Onnx_NodeProto, _ name: String, default value: Bool) throws -> Bool {
        let v = try int(node, name, default: value ? 1 : 0)
        guard v == 0 || v == 1 else { throw fail(node, "attribute '\(name)' must be 0 or 1, got \(v)") }
        return v == 1
    }

    func padding(_ node: Onnx_NodeProto) throws -> ConvNet.Padding {
        let autoPad = attribute(node, "auto_pad").map { String(decoding: $0.s, as: UTF8.self) } ?? "NOTSET"
        let pads = try ints(node, "pads")
        switch autoPad {
        case "NOTSET", "":
            return pads.map { .explicit($0) } ?? .valid
        case "VALID":
            return .valid
        case "SAME_UPPER", "SAME_LOWER":
            return autoPad == "SAME_UPPER" ? .sameUpper : .sameLower
        default:
            throw fail(node, "auto_pad '\(autoPad)' is not supported (NOTSET, SAME_UPPER, SAME_LOWER, VALID are)")
        }
    }

    /// Outputs after the first must be absent or unread.
    func requireOnlyFirstOutput(_ node: Onnx_NodeProto, _ what: String) throws {
        for name in node.output.dropFirst() where !name.isEmpty {
            if graphOutputs.contains(name) || readers[name] != nil {
                throw fail(node, "output '\(name)' (\(what)) is not supported; only the first output is computed")
            }
        }
    }

    // MARK: - Operators

    mutating func add(_ node: Onnx_NodeProto, index: Int) throws {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw fail(node, "operator '\(node.domain).\(node.opType)' is not supported (the default ONNX domain's \(ONNXGraphLoader.supportedOperators.joined(separator: ", ")) are)")
        }
        guard let out = node.output.first, !out.isEmpty else { throw fail(node, "has no output") }
        let name = node.name.isEmpty ? out : node.name
        func input(_ i: Int) throws -> Int {
            guard i < node.input.count, !node.input[i].isEmpty else { throw fail(node, "input \(i) is missing") }
            return try tensor(node.input[i], for: node)
        }
        func optionalInput(_ i: Int) -> String? {
            i < node.input.count && !node.input[i].isEmpty ? node.input[i] : nil
        }
        func emit(_ op: ConvNet.Operation, _ inputs: [Int], opType: String? = nil, output: String? = nil) throws {
            let o = output ?? out
            ids[o] = try builder.add(op, name: name, opType: opType ?? node.opType, inputs: inputs, output: o)
        }

        switch node.opType {
        case "Conv":
            try checkAttributes(node, allowed: ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
            let x = try input(0)
            guard node.input.count > 1, !node.input[1].isEmpty else { throw fail(node, "input 1 (weights) is missing") }
            let (ws, weights) = try constantTensor(node.input[1], for: node, what: "the weights")
            guard ws.count >= 3, ws[0] > 0 else { throw fail(node, "weights \(ws) must be [Cout, Cin / group, kernel...]") }
            if let k = try ints(node, "kernel_shape"), k != Array(ws.dropFirst(2)) {
                throw fail(node, "kernel_shape \(k) disagrees with the weights \(ws)")
            }
            let bias: [Float]? = try optionalInput(2).map { try constantTensor($0, for: node, what: "the bias").values }
            if let b = bias, b.count != ws[0] { throw fail(node, "bias has \(b.count) values for \(ws[0]) output channels") }
            let conv = ConvNet.Convolution(
                strides: try ints(node, "strides"), dilations: try ints(node, "dilations"), padding: try padding(node),
                groups: try int(node, "group", default: 1))
            var inputs = [x]
            inputs.append(try builder.addConstant(name: "\(name)#weights", shape: ws, values: weights))
            if let bias { inputs.append(try builder.addConstant(name: "\(name)#bias", shape: [ws[0]], values: bias)) }
            try emit(.conv(conv), inputs)
        case "BatchNormalization":
            let bn = try batchNormParameters(node)
            ids[out] = try builder.addChannelAffine(name: name, opType: node.opType, input: try input(0), scale: bn.scale, shift: bn.shift, output: out)
        case "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip":
            let act = try activation(node)
            try emit(.activation(act), [try input(0)])
        case "Softmax":
            try checkAttributes(node, allowed: ["axis"])
            let axis = try int(node, "axis", default: opset < 13 ? 1 : -1)
            try emit(.softmax(axis: axis, legacy: opset < 13), [try input(0)])
        case "MaxPool", "AveragePool":
            let isMax = node.opType == "MaxPool"
            try checkAttributes(node, allowed: isMax
                ? ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"]
                : ["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"])
            if isMax { try requireOnlyFirstOutput(node, "Indices") }
            guard let kernel = try ints(node, "kernel_shape") else { throw fail(node, "kernel_shape is required") }
            let pool = ConvNet.Pooling(
                kernelShape: kernel, strides: try ints(node, "strides"), dilations: try ints(node, "dilations"),
                padding: try padding(node), ceilMode: try bool(node, "ceil_mode", default: false),
                countIncludePad: isMax ? false : try bool(node, "count_include_pad", default: false))
            try emit(isMax ? .maxPool(pool) : .averagePool(pool), [try input(0)])
        case "GlobalAveragePool":
            try checkAttributes(node, allowed: [])
            try emit(.globalAveragePool, [try input(0)])
        case "Flatten":
            try checkAttributes(node, allowed: ["axis"])
            try emit(.reshape(.flatten(axis: try int(node, "axis", default: 1))), [try input(0)])
        case "Reshape":
            let shape: [Int]
            if opset < 5 {
                try checkAttributes(node, allowed: ["shape"])
                guard let s = try ints(node, "shape") else { throw fail(node, "attribute 'shape' is required") }
                shape = s
            } else {
                try checkAttributes(node, allowed: ["allowzero"])
                guard let s = optionalInput(1) else { throw fail(node, "input 1 (shape) is missing") }
                shape = try int64Constant(s, for: node)
            }
            try emit(.reshape(.shape(shape, allowZero: try bool(node, "allowzero", default: false))), [try input(0)])
        case "Identity":
            try checkAttributes(node, allowed: [])
            try emit(.reshape(.identity), [try input(0)])
        case "Dropout":
            try checkAttributes(node, allowed: ["ratio", "seed", "is_test"])
            try requireOnlyFirstOutput(node, "mask")
            if let t = optionalInput(2) {
                guard let proto = initializers[t], booleans(proto) == [false] else {
                    throw fail(node, "training_mode '\(t)' must be a constant false (Vigil runs inference)")
                }
            }
            try emit(.reshape(.identity), [try input(0)])
        case "Gemm":
            try checkAttributes(node, allowed: ["alpha", "beta", "transA", "transB"])
            let gemm = ConvNet.Gemm(
                alpha: try float(node, "alpha", default: 1), beta: try float(node, "beta", default: 1),
                transA: try bool(node, "transA", default: false), transB: try bool(node, "transB", default: false))
            var inputs = [try input(0), try input(1)]
            if optionalInput(2) != nil { inputs.append(try input(2)) }
            try emit(.gemm(gemm), inputs)
        case "MatMul":
            try checkAttributes(node, allowed: [])
            try emit(.matMul, [try input(0), try input(1)])
        case "Add", "Mul":
            try checkAttributes(node, allowed: [])
            try emit(node.opType == "Add" ? .add : .mul, [try input(0), try input(1)])
        case "Concat":
            try checkAttributes(node, allowed: ["axis"])
            guard attribute(node, "axis") != nil else { throw fail(node, "attribute 'axis' is required") }
            let inputs = try node.input.indices.filter { !node.input[$0].isEmpty }.map { try input($0) }
            try emit(.concat(axis: try int(node, "axis", default: 0)), inputs)
        case "Constant":
            try checkAttributes(node, allowed: ["value"])
            guard let a = attribute(node, "value"), a.hasT else { throw fail(node, "only a tensor 'value' is supported") }
            var t = a.t
            t.name = out
            if t.dataType == 7 {
                initializers[out] = t  // an int64 shape, read by Reshape
            } else {
                let (shape, values) = try floatTensor(t, for: node)
                ids[out] = try builder.addConstant(name: out, shape: shape, values: values)
            }
        default:
            throw fail(node, "operator '\(node.opType)' is not supported (\(ONNXGraphLoader.supportedOperators.joined(separator: ", ")) are)")
        }
    }

    /// BatchNormalization at inference as y = x * scale + shift per channel, in `Double`:
    /// scale = gamma / sqrt(var + epsilon), shift = beta - mean * scale.
    mutating func batchNormParameters(_ node: Onnx_NodeProto) throws -> (scale: [Double], shift: [Double]) {
        try checkAttributes(node, allowed: ["epsilon", "momentum", "training_mode", "spatial", "is_test"])
        guard try int(node, "training_mode", default: 0) == 0 else {
            throw fail(node, "training_mode = 1 is not supported (Vigil runs inference with the stored statistics)")
        }
        guard try int(node, "spatial", default: 1) == 1 else { throw fail(node, "spatial = 0 is not supported") }
        try requireOnlyFirstOutput(node, "running statistics")
        guard node.input.count == 5 else { throw fail(node, "needs 5 inputs (X, scale, B, mean, var), got \(node.input.count)") }
        let eps = Double(try float(node, "epsilon", default: 1e-5))
        let gamma = try constantFloats(node.input[1], for: node, what: "scale")
        let beta = try constantFloats(node.input[2], for: node, what: "B")
        let mean = try constantFloats(node.input[3], for: node, what: "mean")
        let variance = try constantFloats(node.input[4], for: node, what: "var")
        let c = gamma.count
        guard beta.count == c, mean.count == c, variance.count == c else {
            throw fail(node, "scale, B, mean and var must have one value per channel (\(gamma.count), \(beta.count), \(mean.count), \(variance.count))")
        }
        var scale = [Double](repeating: 0, count: c), shift = scale
        for i in 0..<c {
            guard Double(variance[i]) + eps > 0 else { throw fail(node, "var[\(i)] + epsilon = \(Double(variance[i]) + eps) must be > 0") }
            scale[i] = Double(gamma[i]) / (Double(variance[i]) + eps).squareRoot()
            shift[i] = Double(beta[i]) - Double(mean[i]) * scale[i]
        }
        return (scale, shift)
    }

    mutating func activation(_ node: Onnx_NodeProto) throws -> ConvNet.Activation {
        switch node.opType {
        case "Relu":
            try checkAttributes(node, allowed: [])
            return .relu
        case "Sigmoid":
            try checkAttributes(node, allowed: [])
            return .sigmoid
        case "Tanh":
            try checkAttributes(node, allowed: [])
            return .tanh
        case "LeakyRelu":
            try checkAttributes(node, allowed: ["alpha"])
            return .leakyRelu(alpha: try float(node, "alpha", default: 0.01))
        case "Clip":
            var lo = -Float.infinity, hi = Float.infinity
            if opset < 11 {
                try checkAttributes(node, allowed: ["min", "max"])
                lo = try float(node, "min", default: lo)
                hi = try float(node, "max", default: hi)
            } else {
                try checkAttributes(node, allowed: [])
                for (i, what) in [(1, "min"), (2, "max")] where i < node.input.count && !node.input[i].isEmpty {
                    let v = try constantFloats(node.input[i], for: node, what: what)
                    guard v.count == 1 else { throw fail(node, "\(what) must be a scalar, got \(v.count) values") }
                    if i == 1 { lo = v[0] } else { hi = v[0] }
                }
            }
            return .clip(min: lo, max: hi)
        default:
            throw fail(node, "not an activation")
        }
    }
}
