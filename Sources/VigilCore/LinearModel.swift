/// A (multi-output) linear model: margin_k = sum_j weights[k][j] * x_j + intercepts[k], followed by
/// the objective's link. Built only through `LinearModelBuilder`.
///
/// Numerical contract: margins are computed in `Double` by BLAS (`gemv`/`gemm`), which
/// reassociates sums: results equal a left-to-right sum within a few ulps of the margin.
/// Missing values (NaN) are not imputed: they make the margin NaN and the engine refuses them.
package struct LinearModel: Sendable, Equatable {
    package let featureCount: Int
    /// Row-major `outputCount x featureCount`.
    package let weights: [Double]
    package let intercepts: [Double]
    package let objective: Objective
    /// Feature names the model file carries, if any.
    package let featureNames: [String]?

    package var outputCount: Int { objective.outputCount }

    fileprivate init(featureCount: Int, weights: [Double], intercepts: [Double], objective: Objective, featureNames: [String]?) {
        self.featureCount = featureCount
        self.weights = weights
        self.intercepts = intercepts
        self.objective = objective
        self.featureNames = featureNames
    }
}

/// Checks everything a `LinearModel` relies on, then builds it.
package struct LinearModelBuilder: Sendable {
    package var featureCount: Int
    package var objective: Objective
    package var featureNames: [String]?
    private var weights: [Double] = []
    private var intercepts: [Double] = []

    package init(featureCount: Int, objective: Objective, featureNames: [String]? = nil) {
        self.featureCount = featureCount
        self.objective = objective
        self.featureNames = featureNames
    }

    /// Adds the coefficients of the next output (class) in order.
    package mutating func addOutput(coefficients: [Double], intercept: Double) {
        weights.append(contentsOf: coefficients)
        intercepts.append(intercept)
    }

    package func build() throws -> LinearModel {
        guard featureCount > 0 else {
            throw VigilError.modelInvalid("a linear model needs at least one feature, got \(featureCount)")
        }
        let outputs = objective.outputCount
        guard intercepts.count == outputs else {
            throw VigilError.modelInvalid("linear model: the objective \(objective.summary) needs \(outputs) output(s) but \(intercepts.count) were given")
        }
        guard weights.count == outputs * featureCount else {
            throw VigilError.modelInvalid("linear model: expected \(outputs) x \(featureCount) = \(outputs * featureCount) coefficients, got \(weights.count)")
        }
        if let i = weights.firstIndex(where: { !$0.isFinite }) {
            throw VigilError.modelInvalid("linear model: coefficient \(i % featureCount) of output \(i / featureCount) is \(weights[i]); coefficients must be finite")
        }
        if let i = intercepts.firstIndex(where: { !$0.isFinite }) {
            throw VigilError.modelInvalid("linear model: intercept of output \(i) is \(intercepts[i]); it must be finite")
        }
        if let names = featureNames, names.count != featureCount {
            throw VigilError.modelInvalid("linear model: \(names.count) feature names for \(featureCount) features")
        }
        if case .binaryLogistic(let scale) = objective, !(scale.isFinite && scale > 0) {
            throw VigilError.modelInvalid("linear model: logistic scale \(scale) must be finite and > 0")
        }
        return LinearModel(featureCount: featureCount, weights: weights, intercepts: intercepts, objective: objective, featureNames: featureNames)
    }
}
