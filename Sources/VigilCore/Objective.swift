/// How a model's raw margin becomes its output. Format-specific spellings (`binary sigmoid:1`,
/// `binary:logistic`, `post_transform LOGISTIC`) are decoded by the loaders into this.
package enum Objective: Sendable, Equatable {
    /// risk = 1 / (1 + exp(-scale * margin)); one output.
    case binaryLogistic(scale: Double)
    /// risk_k = softmax(margin)_k over `classes` outputs.
    case multiclassSoftmax(classes: Int)
    /// The margin is the prediction; one output.
    case regression

    /// Number of raw outputs (margins) per row.
    package var outputCount: Int {
        switch self {
        case .binaryLogistic, .regression: return 1
        case .multiclassSoftmax(let classes): return classes
        }
    }

    package var taskName: String {
        switch self {
        case .binaryLogistic: return "binary"
        case .multiclassSoftmax: return "multiclass"
        case .regression: return "regression"
        }
    }

    package var summary: String {
        switch self {
        case .binaryLogistic(let scale): return scale == 1 ? "binary (logistic)" : "binary (logistic, scale \(scale))"
        case .multiclassSoftmax(let k): return "multiclass (softmax, \(k) classes)"
        case .regression: return "regression (identity)"
        }
    }
}
