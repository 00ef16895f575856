public import VigilCore

/// The space attributions are expressed in: the model's raw margin, before the link.
public enum AttributionSpace: String, Sendable, Equatable {
    /// A binary logistic model with scale 1: the margin is the log-odds of the risk.
    case logOdds = "log-odds"
    /// Any other margin: a scaled logit (LightGBM `sigmoid:0.7`), a softmax logit per class, or
    /// a regression's prediction itself.
    case margin

    package init(_ objective: Objective) {
        if case .binaryLogistic(let scale) = objective, scale == 1 {
            self = .logOdds
        } else {
            self = .margin
        }
    }
}

/// How an attribution was computed.
public enum AttributionMethod: String, Sendable, Equatable {
    /// φⱼ = βⱼ(xⱼ − E[xⱼ]) (exact Shapley values of a linear model with independent features).
    case linearSHAP = "linear-shap"
    /// Exact path-dependent TreeSHAP (Lundberg et al. 2018), weighted by the trees' node covers.
    case treeSHAP = "tree-shap"
    /// Integrated gradients (Sundararajan et al. 2017) along the straight path from a baseline,
    /// by quadrature: approximate, with its completeness error reported (`Integration`).
    case integratedGradients = "integrated-gradients"
}

/// How an approximate attribution was integrated, and how far its sum is from exact.
public struct Integration: Sendable, Equatable {
    /// The baseline the path starts from (e.g. "black image").
    public var baseline: String
    /// Quadrature points used.
    public var steps: Int
    /// Largest |Σφ − (F(x) − F(baseline))| over the outputs, in margin units.
    public var completenessError: Double
    /// That error relative to |F(x) − F(baseline)|.
    public var relativeError: Double

    package init(baseline: String, steps: Int, completenessError: Double, relativeError: Double) {
        self.baseline = baseline
        self.steps = steps
        self.completenessError = completenessError
        self.relativeError = relativeError
    }
}

/// One row's attribution: per output, a base value and one contribution per feature, in the
/// model's margin space, with base + Σ contributions = the row's margin (see `Explainer`).
public struct Attribution: Sendable, Equatable {
    public let method: AttributionMethod
    public let space: AttributionSpace
    public let featureCount: Int
    /// Per output: the expected margin that contributions start from.
    public var base: [Double]
    /// `outputCount x featureCount`, row-major by output.
    public var contributions: [Double]
    /// The row's input values in feature order, as given (NaN = missing; never replaced by 0),
    /// so that a record shows each contribution next to the value that earned it.
    public var values: [Double]
    /// For integrated gradients: the baseline, steps and completeness error; nil for the exact
    /// methods.
    public var integration: Integration?

    package init(
        method: AttributionMethod, space: AttributionSpace, featureCount: Int, base: [Double],
        contributions: [Double], values: [Double], integration: Integration? = nil
    ) {
        self.integration = integration
        self.method = method
        self.space = space
        self.featureCount = featureCount
        self.base = base
        self.contributions = contributions
        self.values = values
    }

    public var outputCount: Int { base.count }

    public func contribution(output: Int, feature: Int) -> Double {
        contributions[output * featureCount + feature]
    }

    /// The row in `Explainer.explain`'s layout (LightGBM `pred_contrib`): per output, the
    /// contributions in feature order, then the base; `outputCount x (featureCount + 1)` values.
    public var block: [Double] {
        var out: [Double] = []
        out.reserveCapacity(outputCount * (featureCount + 1))
        for c in 0..<outputCount {
            out += contributions[(c * featureCount)..<((c + 1) * featureCount)]
            out.append(base[c])
        }
        return out
    }

    /// The `k` features with the largest |contribution| to `output`, largest first; ties keep
    /// feature order. `k` above the feature count returns every feature.
    public func top(_ k: Int, output: Int) -> [Int] {
        let o = output * featureCount
        let order = (0..<featureCount).sorted { a, b in
            let ca = abs(contributions[o + a]), cb = abs(contributions[o + b])
            return ca != cb ? ca > cb : a < b
        }
        return Array(order.prefix(max(0, k)))
    }
}
