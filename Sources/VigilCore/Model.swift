package import VigilKernels

/// A loaded model in Vigil's IR, whatever file it came from.
package enum ModelIR: Sendable {
    case linear(LinearModel)
    case trees(TreeEnsemble)
    /// A CNN or MLP whose final Sigmoid / Softmax became the objective's link (the net computes
    /// margins); its features are the input tensor's values for one sample, flattened (an
    /// image: `C x H x W`, already preprocessed).
    case convNet(ConvNet, Objective)

    package var featureCount: Int {
        switch self {
        case .linear(let m): return m.featureCount
        case .trees(let m): return m.featureCount
        case .convNet(let n, _): return n.inputCount
        }
    }

    package var objective: Objective {
        switch self {
        case .linear(let m): return m.objective
        case .trees(let m): return m.objective
        case .convNet(_, let o): return o
        }
    }

    package var outputCount: Int { objective.outputCount }

    /// Feature names the model file itself carries (LightGBM `feature_names`, XGBoost
    /// `feature_names`, ONNX has none per column).
    package var featureNames: [String]? {
        switch self {
        case .linear(let m): return m.featureNames
        case .trees(let m): return m.featureNames
        case .convNet: return nil
        }
    }

    /// Whether a missing value can be routed by the model itself (trees) or not (linear).
    package var acceptsMissing: Bool {
        if case .trees = self { return true }
        return false
    }
}

extension ModelIR {
    /// Raw margins, `rows x outputCount`, for `rows` row-major rows of `featureCount` values.
    package func predictRaw(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>) {
        predictRaw(x, rows: rows, into: out, kernels: .best)
    }

    package func predictRaw(
        _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, kernels: KernelTable
    ) {
        switch self {
        case .trees(let m):
            m.predictRaw(x, rows: rows, into: out)
        case .linear(let m):
            m.predictRaw(x, rows: rows, into: out, kernels: kernels)
        case .convNet(let n, _):
            n.predictRaw(x, rows: rows, into: out, kernels: kernels)
        }
    }

    /// Applies the objective's link to `rows` margins in place.
    package func transform(_ values: UnsafeMutablePointer<Double>, rows: Int) {
        objective.transform(values, rows: rows)
    }
}

extension Objective {
    /// Margin → output, in place, for `rows x outputCount` values.
    package func transform(_ values: UnsafeMutablePointer<Double>, rows: Int) {
        switch self {
        case .regression:
            return
        case .binaryLogistic(let scale):
            for r in 0..<rows { values[r] = Activations.sigmoid(values[r], scale: scale) }
        case .multiclassSoftmax(let k):
            for r in 0..<rows { Activations.softmax(values + r * k, count: k) }
        }
    }
}

extension LinearModel {
    /// margins = X · Wᵀ + b through BLAS: `gemv` for one output, `gemm` for several.
    package func predictRaw(
        _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, kernels: KernelTable
    ) {
        let k = outputCount
        for r in 0..<rows {
            for c in 0..<k { out[r * k + c] = intercepts[c] }
        }
        weights.withUnsafeBufferPointer { w in
            if k == 1 {
                kernels.gemv(rows, featureCount, x, w.baseAddress!, 1.0, out)
            } else {
                kernels.gemmABt(rows, k, featureCount, x, w.baseAddress!, 1.0, out)
            }
        }
    }
}
