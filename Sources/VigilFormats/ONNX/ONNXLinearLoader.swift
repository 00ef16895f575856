package import Foundation
internal import ONNXProto
internal import SwiftProtobuf
package import VigilCore

/// Reads a linear model from ONNX, as scikit-learn's exporter (skl2onnx) and hand-built graphs
/// write it, into a checked `LinearModel`:
///
/// - `ai.onnx.ml` `LinearClassifier` (float coefficients, `post_transform` LOGISTIC / SOFTMAX /
///   NONE), optionally followed by `Normalizer` (L1), `ZipMap`, `Cast`, `Identity`;
/// - the plain form: `MatMul` (or `Gemm`) with an initializer, `Add` of an initializer, then
///   `Sigmoid` or `Softmax`, optionally L1-normalised (`Div(x, ReduceSum(Abs(x)))`, which is what
///   skl2onnx writes for a float64 input); also `LinearRegressor`.
///
/// The probability output is traced back to the graph input; every node on that path must be
/// one of the above. A two-row binary model (skl2onnx writes rows `-w` and `w`) becomes one
/// logistic output for class 1. Coefficients keep the precision the file stores: float32
/// coefficients are widened exactly, and Vigil then evaluates in `Double`.
package struct ONNXLinearLoader: Sendable {
    package let fileName: String

    package init(fileName: String = "model.onnx") {
        self.fileName = fileName
    }

    package func load(data: Data) throws -> LinearModel {
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw VigilError.modelFormat(fileName, at: "protobuf", "not a valid ONNX model (truncated or corrupt): \(error)")
        }
        let graph = model.graph
        guard model.hasGraph, !graph.node.isEmpty else {
            throw VigilError.modelFormat(fileName, at: "graph", "the model has no graph nodes (not an ONNX model, or truncated)")
        }
        let tracer = try Tracer(graph: graph, file: fileName)
        var lastError: VigilError?
        for output in graph.output {
            do {
                let expr = try tracer.resolve(output.name)
                return try tracer.linearModel(from: expr, outputName: output.name)
            } catch let e as VigilError {
                lastError = e
            }
        }
        throw lastError ?? VigilError.modelFormat(fileName, at: "graph", "the graph has no outputs")
    }
}

/// A linear expression over the graph input, as recovered from the graph.
private indirect enum LinearExpr {
    case input
    /// rows (outputs) x features, bias per output.
    case affine(rows: [[Double]], bias: [Double])
    case logistic(LinearExpr)
    case softmax(LinearExpr)
    case l1Normalized(LinearExpr)
    /// LinearClassifier with one row and two class labels: [1 - p, p].
    case binaryComplement(LinearExpr)
}

private struct Tracer {
    let file: String
    let inputName: String
    let producers: [String: Onnx_NodeProto]
    let initializers: [String: Onnx_TensorProto]

    init(graph: Onnx_GraphProto, file: String) throws {
        self.file = file
        var inits: [String: Onnx_TensorProto] = [:]
        for t in graph.initializer { inits[t.name] = t }
        initializers = inits
        let inputs = graph.input.filter { inits[$0.name] == nil }
        guard inputs.count == 1 else {
            throw VigilError.modelFormat(file, at: "graph.input", "a linear model needs exactly one input tensor; found \(inputs.map(\.name))")
        }
        inputName = inputs[0].name
        var producers: [String: Onnx_NodeProto] = [:]
        for node in graph.node {
            for o in node.output where !o.isEmpty { producers[o] = node }
        }
        self.producers = producers
    }

    func fail(_ node: Onnx_NodeProto, _ message: String) -> VigilError {
        .modelFormat(file, at: "node '\(node.name)' (\(node.opType))", message)
    }

    func tensor(_ name: String, for node: Onnx_NodeProto) throws -> ONNXTensor {
        guard let t = initializers[name] else {
            throw fail(node, "input '\(name)' must be a constant initializer for a linear model")
        }
        return try ONNXTensor(t, file: file)
    }

    /// Input `i` of `node`, or an error naming the node when it has fewer inputs.
    func arg(_ node: Onnx_NodeProto, _ i: Int) throws -> String {
        guard i < node.input.count else {
            throw fail(node, "has \(node.input.count) input(s) but the operator needs input \(i)")
        }
        return node.input[i]
    }

    /// Deepest chain of nodes followed back from an output (a cycle in the graph would
    /// otherwise recurse without end).
    static let maxDepth = 64

    func resolve(_ name: String, depth: Int = 0) throws -> LinearExpr {
        if name == inputName { return .input }
        guard depth < Self.maxDepth else {
            throw VigilError.modelFormat(file, at: "tensor '\(name)'", "more than \(Self.maxDepth) nodes between it and the graph input (a cycle, or not a linear model)")
        }
        func resolve(_ name: String) throws -> LinearExpr { try self.resolve(name, depth: depth + 1) }
        guard let node = producers[name] else {
            throw VigilError.modelFormat(file, at: "tensor '\(name)'", "no node produces it and it is not the graph input")
        }
        switch (node.domain, node.opType) {
        case ("", "Identity"), ("", "Cast"), ("ai.onnx.ml", "ZipMap"):
            return try resolve(try arg(node, 0))
        case ("", "Sigmoid"):
            return .logistic(try resolve(try arg(node, 0)))
        case ("", "Softmax"):
            return .softmax(try resolve(try arg(node, 0)))
        case ("", "MatMul"):
            guard case .input = try resolve(try arg(node, 0)) else { throw fail(node, "MatMul must multiply the graph input") }
            let w = try tensor(try arg(node, 1), for: node)
            guard w.dims.count == 2 else { throw fail(node, "weights '\(w.name)' must be 2-D [features, outputs], found \(w.dims)") }
            let (f, k) = (w.dims[0], w.dims[1])
            let rows = (0..<k).map { c in (0..<f).map { w.values[$0 * k + c] } }
            return .affine(rows: rows, bias: Array(repeating: 0, count: k))
        case ("", "Gemm"):
            guard case .input = try resolve(try arg(node, 0)) else { throw fail(node, "Gemm must multiply the graph input") }
            let attrs = Dictionary(node.attribute.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            guard (attrs["transA"]?.i ?? 0) == 0 else { throw fail(node, "transA=1 is not supported") }
            let alpha = Double(attrs["alpha"]?.f ?? 1), beta = Double(attrs["beta"]?.f ?? 1)
            let transB = (attrs["transB"]?.i ?? 0) != 0
            let w = try tensor(try arg(node, 1), for: node)
            guard w.dims.count == 2 else { throw fail(node, "B must be 2-D, found \(w.dims)") }
            let (f, k) = transB ? (w.dims[1], w.dims[0]) : (w.dims[0], w.dims[1])
            let rows = (0..<k).map { c in (0..<f).map { j in alpha * (transB ? w.values[c * f + j] : w.values[j * k + c]) } }
            var bias = Array(repeating: 0.0, count: k)
            if node.input.count > 2, !node.input[2].isEmpty {
                let c = try tensor(node.input[2], for: node)
                guard c.count == k || c.count == 1 else { throw fail(node, "C has \(c.count) values for \(k) outputs") }
                bias = (0..<k).map { beta * c.values[c.count == 1 ? 0 : $0] }
            }
            return .affine(rows: rows, bias: bias)
        case ("", "Add"):
            let (a, b0) = (try arg(node, 0), try arg(node, 1))
            let (exprName, biasName) = initializers[b0] != nil ? (a, b0) : (b0, a)
            guard case .affine(let rows, let bias) = try resolve(exprName) else {
                throw fail(node, "Add must add a constant to MatMul's result")
            }
            let b = try tensor(biasName, for: node)
            guard b.count == rows.count || b.count == 1 else { throw fail(node, "bias '\(b.name)' has \(b.count) values for \(rows.count) outputs") }
            return .affine(rows: rows, bias: bias.indices.map { bias[$0] + b.values[b.count == 1 ? 0 : $0] })
        case ("", "Div"):
            // x / ReduceSum(Abs(x)): L1 normalisation of the class scores.
            let x = try arg(node, 0)
            guard let sum = producers[try arg(node, 1)], sum.opType == "ReduceSum",
                  let abs = producers[try arg(sum, 0)], abs.opType == "Abs", try arg(abs, 0) == x
            else { throw fail(node, "only the L1 normalisation x / ReduceSum(Abs(x)) is supported") }
            return .l1Normalized(try resolve(try arg(node, 0)))
        case ("ai.onnx.ml", "Normalizer"):
            let norm = node.attribute.first { $0.name == "norm" }.map { String(decoding: $0.s, as: UTF8.self) } ?? "MAX"
            guard norm == "L1" else { throw fail(node, "norm '\(norm)' is not supported (L1 is)") }
            return .l1Normalized(try resolve(try arg(node, 0)))
        case ("ai.onnx.ml", "LinearClassifier"), ("ai.onnx.ml", "LinearRegressor"):
            guard node.output.count < 2 || node.opType == "LinearRegressor" || node.output[1] == name else {
                throw fail(node, "output '\(name)' is the label, not the scores")
            }
            guard case .input = try resolve(try arg(node, 0)) else { throw fail(node, "must read the graph input") }
            let attrs = Dictionary(node.attribute.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let coefficients = (attrs["coefficients"]?.floats ?? []).map { Double($0) }
            let intercepts = (attrs["intercepts"]?.floats ?? []).map { Double($0) }
            let k: Int
            if node.opType == "LinearRegressor" {
                k = Int(attrs["targets"]?.i ?? 1)
            } else {
                k = max(intercepts.count, 1)
            }
            guard k > 0, !coefficients.isEmpty, coefficients.count % k == 0 else {
                throw fail(node, "\(coefficients.count) coefficients cannot be split into \(k) rows")
            }
            let f = coefficients.count / k
            let rows = (0..<k).map { Array(coefficients[($0 * f)..<(($0 + 1) * f)]) }
            let bias = intercepts.isEmpty ? Array(repeating: 0, count: k) : intercepts
            guard bias.count == k else { throw fail(node, "\(bias.count) intercepts for \(k) rows") }
            var expr = LinearExpr.affine(rows: rows, bias: bias)
            let post = attrs["post_transform"].map { String(decoding: $0.s, as: UTF8.self) } ?? "NONE"
            switch post {
            case "NONE": break
            case "LOGISTIC": expr = .logistic(expr)
            case "SOFTMAX": expr = .softmax(expr)
            default: throw fail(node, "post_transform '\(post)' is not supported (NONE, LOGISTIC, SOFTMAX are)")
            }
            let labels = max(attrs["classlabels_ints"]?.ints.count ?? 0, attrs["classlabels_strings"]?.strings.count ?? 0)
            if node.opType == "LinearClassifier", k == 1, labels == 2 { expr = .binaryComplement(expr) }
            return expr
        default:
            throw fail(node, "operator '\(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType)' is not supported by the linear ONNX loader (MatMul, Gemm, Add, Sigmoid, Softmax, LinearClassifier, LinearRegressor, Normalizer, ZipMap, Cast, Identity are)")
        }
    }

    func linearModel(from expr: LinearExpr, outputName: String) throws -> LinearModel {
        func rowsAreNegations(_ rows: [[Double]], _ bias: [Double]) -> Bool {
            rows.count == 2 && zip(rows[0], rows[1]).allSatisfy { $0 == -$1 } && bias[0] == -bias[1]
        }
        let place = "output '\(outputName)'"
        var objective: Objective
        var rows: [[Double]]
        var bias: [Double]
        switch expr {
        case .binaryComplement(.logistic(.affine(let r, let b))):
            objective = .binaryLogistic(scale: 1); rows = r; bias = b
        case .logistic(.affine(let r, let b)), .l1Normalized(.logistic(.affine(let r, let b))):
            if r.count == 1 {
                objective = .binaryLogistic(scale: 1); rows = r; bias = b
            } else if rowsAreNegations(r, b) {
                // skl2onnx's binary form: scores (-z, z); sigmoid; L1-normalised → p = sigmoid(z).
                objective = .binaryLogistic(scale: 1); rows = [r[1]]; bias = [b[1]]
            } else {
                throw VigilError.modelFormat(file, at: place, "per-class sigmoid over \(r.count) classes (one-vs-rest) is not supported")
            }
        case .softmax(.affine(let r, let b)), .l1Normalized(.softmax(.affine(let r, let b))):
            guard r.count >= 2 else { throw VigilError.modelFormat(file, at: place, "softmax over one output") }
            objective = .multiclassSoftmax(classes: r.count); rows = r; bias = b
        case .affine(let r, let b):
            guard r.count == 1 else { throw VigilError.modelFormat(file, at: place, "a linear output with \(r.count) columns and no link is not supported") }
            objective = .regression; rows = r; bias = b
        default:
            throw VigilError.modelFormat(file, at: place, "the graph is not a linear model followed by a sigmoid or softmax")
        }
        guard let featureCount = rows.first?.count else { throw VigilError.modelFormat(file, at: place, "the linear model has no outputs") }
        var builder = LinearModelBuilder(featureCount: featureCount, objective: objective)
        for (r, b) in zip(rows, bias) {
            guard r.count == featureCount else { throw VigilError.modelFormat(file, at: place, "rows of different lengths") }
            builder.addOutput(coefficients: r, intercept: b)
        }
        do {
            return try builder.build()
        } catch let e as VigilError {
            throw VigilError(e.kind, "\(file): \(e.message)")
        }
    }
}
