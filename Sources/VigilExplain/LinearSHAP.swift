internal import VigilKernels
package import VigilCore

/// Exact SHAP values of a linear model, per output k, in margin (log-odds) space:
///
///     φₖⱼ = βₖⱼ (xⱼ − E[xⱼ]),   baseₖ = Σⱼ βₖⱼ E[xⱼ] + bₖ
///
/// These are the Shapley values of the margin when features are taken as independent (the
/// interventional expectation), which for a linear margin need only E[x]: here the training
/// means from the manifest. They equal shap's `LinearExplainer` (interventional) on a background
/// whose column means are those means.
///
/// Numerical contract: each contribution is one product and one subtraction; base + Σⱼ φₖⱼ
/// equals the BLAS margin up to the reassociation of both sums (≤ 1e-12 relative).
package struct LinearSHAP: Sendable {
    package let model: LinearModel
    /// E[x] per feature.
    package let means: [Double]
    /// Per output: βₖ·E[x] + bₖ, summed left to right.
    package let base: [Double]

    package init(_ model: LinearModel, means: [Double]) {
        precondition(means.count == model.featureCount, "one mean per feature")
        self.model = model
        self.means = means
        let f = model.featureCount
        base = (0..<model.outputCount).map { k in
            var s = 0.0
            for j in 0..<f { s += model.weights[k * f + j] * means[j] }
            return s + model.intercepts[k]
        }
    }

    /// `rows x outputCount x (featureCount + 1)`: contributions then the base value, per output.
    package func explain(_ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>, threads: Int?) {
        let f = model.featureCount
        let k = model.outputCount
        let stride = k * (f + 1)
        model.weights.withUnsafeBufferPointer { wb in
            means.withUnsafeBufferPointer { mb in
                base.withUnsafeBufferPointer { bb in
                    let ctx = UncheckedSendable((x, out, wb.baseAddress!, mb.baseAddress!, bb.baseAddress!))
                    Parallel.forEachChunk(count: rows, minChunk: 4096, threads: threads ?? Parallel.cores) { range in
                        let (x, out, w, mean, base) = ctx.value
                        for r in range {
                            let row = x + r * f
                            let o = out + r * stride
                            for c in 0..<k {
                                let block = o + c * (f + 1)
                                let beta = w + c * f
                                for j in 0..<f { block[j] = beta[j] * (row[j] - mean[j]) }
                                block[f] = base[c]
                            }
                        }
                    }
                }
            }
        }
    }
}
