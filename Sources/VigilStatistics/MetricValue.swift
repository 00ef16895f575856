/// A metric that is either a number or undefined for a stated reason (a true-positive rate in a
/// group with no positives, an AUROC on one class). Never 0 or NaN in place of "undefined".
package enum MetricValue: Sendable, Equatable {
    case value(Double)
    case undefined(String)

    package var value: Double? {
        if case .value(let v) = self { return v }
        return nil
    }

    package var reason: String? {
        if case .undefined(let r) = self { return r }
        return nil
    }

    /// `value(a / b)`, or undefined with `reason` when `b` is 0.
    package static func ratio(_ a: Double, _ b: Double, _ reason: @autoclosure () -> String) -> MetricValue {
        b > 0 ? .value(a / b) : .undefined(reason())
    }
}

/// The metrics `vigil audit` reports per group and overall, by their JSON names.
package enum Metric: String, Sendable, CaseIterable, Comparable {
    case n, positives, prevalence
    case selectionRate = "selection_rate"
    case tpr, fpr, fnr, tnr, ppv, npv, accuracy
    case balancedAccuracy = "balanced_accuracy"
    case auroc, auprc, brier, ece
    case calibrationSlope = "calibration_slope"
    case calibrationIntercept = "calibration_intercept"

    /// A human name for reports.
    package var title: String {
        switch self {
        case .n: return "rows"
        case .positives: return "positives"
        case .prevalence: return "prevalence"
        case .selectionRate: return "selection rate"
        case .tpr: return "TPR (sensitivity)"
        case .fpr: return "FPR"
        case .fnr: return "FNR"
        case .tnr: return "TNR (specificity)"
        case .ppv: return "PPV (precision)"
        case .npv: return "NPV"
        case .accuracy: return "accuracy"
        case .balancedAccuracy: return "balanced accuracy"
        case .auroc: return "AUROC"
        case .auprc: return "AUPRC (average precision)"
        case .brier: return "Brier score"
        case .ece: return "ECE (10 bins)"
        case .calibrationSlope: return "calibration slope"
        case .calibrationIntercept: return "calibration intercept"
        }
    }

    /// Counts, which get no disparity summaries or confidence intervals.
    package var isCount: Bool { self == .n || self == .positives }

    package static func < (a: Metric, b: Metric) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
