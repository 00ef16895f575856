public import VigilCore

/// Attributes a model's margins to its features, built once when the model loads.
///
/// `explain` writes, for each row, `outputCount` blocks of `featureCount + 1` values: the
/// contributions in feature order, then the base value (LightGBM `pred_contrib` / XGBoost
/// `pred_contribs` layout). The contract: base + Σ contributions equals the row's raw margin
/// (`ModelIR.predictRaw`), up to the rounding of the sums (≤ 1e-9 relative in `Double`; for
/// XGBoost models, whose margin Vigil sums in `Float` as XGBoost does, ≤ that float32 rounding).
public struct Explainer: Sendable {
    public let method: AttributionMethod
    public let space: AttributionSpace
    public let featureCount: Int
    public let outputCount: Int
    /// Per output: the base value every row's contributions start from.
    package let base: [Double]
    /// What the user should know about these attributions (e.g. no feature means for linear SHAP).
    public let warnings: [String]

    enum Kernel: Sendable {
        case linear(LinearSHAP)
        case trees(TreeSHAP)
        case integratedGradients(IntegratedGradients)
    }

    let kernel: Kernel

    /// - Parameters:
    ///   - model: the model to explain.
    ///   - means: per feature, its training mean (the manifest's `mean`), nil where unknown;
    ///     `nil` for none at all (a bare model file). Used by linear SHAP only: TreeSHAP takes its
    ///     expectations from the trees' covers.
    ///   - imageInput: a CNN's image preprocessing; integrated gradients then start from a black
    ///     image through it. Without it (a CNN on plain tensors) the baseline is all zeros.
    /// - Throws: `VigilError` (`.modelInvalid`) when the model lacks what the method needs (a
    ///   tree split without a cover), naming the tree and node.
    package init(model: ModelIR, means: [Double?]?, imageInput: ImageInputSpec? = nil) throws(VigilError) {
        featureCount = model.featureCount
        outputCount = model.outputCount
        space = AttributionSpace(model.objective)
        switch model {
        case .linear(let m):
            let given = means ?? Array(repeating: nil, count: m.featureCount)
            guard given.count == m.featureCount else {
                throw VigilError(.package, "linear SHAP: \(given.count) feature means for \(m.featureCount) features")
            }
            if let i = given.firstIndex(where: { $0.map { !$0.isFinite } ?? false }) {
                throw VigilError(.package, "linear SHAP: the mean of feature \(i) is \(given[i]!); it must be finite")
            }
            let unknown = given.indices.filter { given[$0] == nil }
            var notes: [String] = []
            if unknown.count == m.featureCount {
                notes.append("no feature means (manifest `mean`): linear SHAP takes E[x] = 0, so the base value is the intercept and each contribution is coefficient × value")
            } else if !unknown.isEmpty {
                let names = unknown.prefix(5).map { m.featureNames?[$0] ?? "feature \($0)" }.joined(separator: ", ")
                notes.append("no manifest `mean` for \(names)\(unknown.count > 5 ? " and \(unknown.count - 5) more" : ""): linear SHAP takes E[x] = 0 for \(unknown.count == 1 ? "it" : "them")")
            }
            let shap = LinearSHAP(m, means: given.map { $0 ?? 0 })
            method = .linearSHAP
            base = shap.base
            warnings = notes
            kernel = .linear(shap)
        case .trees(let t):
            let shap = try TreeSHAP(t)
            method = .treeSHAP
            base = shap.base
            warnings = []
            kernel = .trees(shap)
        case .convNet(let net, _):
            let baseline: [Float], name: String
            if let imageInput, imageInput.count == net.inputCount {
                baseline = IntegratedGradients.blackImage(imageInput)
                name = "black image"
            } else {
                baseline = [Float](repeating: 0, count: net.inputCount)
                name = "zero tensor"
            }
            let ig = try IntegratedGradients(net: net, baseline: baseline, baselineName: name)
            method = .integratedGradients
            base = ig.base
            warnings = []
            kernel = .integratedGradients(ig)
        }
    }

    /// Values per row written by `explain`: `outputCount x (featureCount + 1)`.
    package var rowStride: Int { outputCount * (featureCount + 1) }

    /// Attributions for `rows` row-major rows of `featureCount` values (NaN = missing), written
    /// to `out` as `rows x rowStride`. Rows are spread over `threads` partitions (default: every
    /// core). A linear model cannot attribute a missing value: its contributions come out NaN,
    /// as its margin does (the engine refuses such rows before they get here).
    package func explain(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, threads: Int? = nil) {
        switch kernel {
        case .linear(let m): m.explain(x, rows: rows, into: out, threads: threads)
        case .trees(let m): m.explain(x, rows: rows, into: out, threads: threads)
        case .integratedGradients(let ig):
            let f = featureCount
            var xf = [Float](repeating: 0, count: rows * f)
            for i in 0..<(rows * f) { xf[i] = Float(x[i]) }
            let results = xf.withUnsafeBufferPointer { ig.explain($0.baseAddress!, rows: rows, threads: threads) }
            for (r, result) in results.enumerated() {
                let block = out + r * rowStride
                for c in 0..<outputCount {
                    for j in 0..<f { block[c * (f + 1) + j] = result.attributions[c * f + j] }
                    block[c * (f + 1) + f] = result.base[c]
                }
            }
        }
    }

    /// The integrated-gradients engine of a CNN's explainer (nil for trees and linear models):
    /// image scoring uses it directly for each row's steps and completeness error.
    public var integratedGradients: IntegratedGradients? {
        if case .integratedGradients(let ig) = kernel { return ig }
        return nil
    }

    /// One row's `Attribution` from its block of `explain`'s output and its input values.
    package func attribution(block: UnsafePointer<Double>, values: UnsafePointer<Double>) -> Attribution {
        let f = featureCount
        var contributions = [Double](repeating: 0, count: outputCount * f)
        var base = [Double](repeating: 0, count: outputCount)
        for c in 0..<outputCount {
            for j in 0..<f { contributions[c * f + j] = block[c * (f + 1) + j] }
            base[c] = block[c * (f + 1) + f]
        }
        return Attribution(
            method: method, space: space, featureCount: f, base: base, contributions: contributions,
            values: Array(UnsafeBufferPointer(start: values, count: f)))
    }
}
