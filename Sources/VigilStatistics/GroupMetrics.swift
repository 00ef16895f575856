/// The point metrics of one group (or the whole cohort), with optional integer multiplicities
/// (bootstrap replicates). Definitions, for a reader checking them against other tools:
///
/// - Confusion counts use each row's decision (`risk >= threshold`); rates are the usual ratios
///   (TPR = TP / P, FPR = FP / N, PPV = TP / (TP + FP), NPV = TN / (TN + FN), balanced accuracy =
///   (TPR + TNR) / 2), as scikit-learn and Fairlearn define them.
/// - AUROC: the area under the ROC curve with tied risks counted as half (the trapezoidal area
///   scikit-learn's `roc_auc_score` computes).
/// - AUPRC: average precision as scikit-learn's `average_precision_score` defines it,
///   `sum_k (R_k - R_{k-1}) P_k` over the distinct risks in descending order (no interpolation).
/// - Brier: mean of `(risk - label)^2`.
/// - ECE: 10 equal-width bins, bin `min(floor(10 * risk), 9)`, `sum_b (n_b / n) |mean label_b -
///   mean risk_b|`.
/// - Calibration slope and intercept: see `LogisticCalibration`.
///
/// A metric whose denominator is empty is `.undefined` with the reason, never 0 or NaN.
package enum GroupMetrics {
    package static let eceBins = 10

    package static func compute(_ s: LabelledScores, weights: [Double]? = nil) -> [Metric: MetricValue] {
        var n = 0.0, pos = 0.0, tp = 0.0, fp = 0.0, tn = 0.0, fn = 0.0, brier = 0.0
        var binN = [Double](repeating: 0, count: eceBins)
        var binRisk = binN, binLabel = binN
        // Ranking metrics, one block of tied risks at a time.
        var auc = 0.0, ap = 0.0, cumTP = 0.0, cumFP = 0.0
        var i = 0
        let count = s.count
        while i < count {
            var blockPos = 0.0, blockNeg = 0.0
            var j = i
            let r = s.risks[i]
            while j < count, s.risks[j] == r {
                let w = weights?[j] ?? 1
                if w != 0 {
                    let y = s.labels[j]
                    n += w
                    if y { pos += w; blockPos += w } else { blockNeg += w }
                    switch (s.decisions[j], y) {
                    case (true, true): tp += w
                    case (true, false): fp += w
                    case (false, false): tn += w
                    case (false, true): fn += w
                    }
                    let d = r - (y ? 1 : 0)
                    brier += w * d * d
                    let b = min(Int((r * Double(eceBins)).rounded(.down)), eceBins - 1)
                    binN[b] += w
                    binRisk[b] += w * r
                    if y { binLabel[b] += w }
                }
                j += 1
            }
            if blockPos + blockNeg > 0 {
                auc += blockNeg * (cumTP + blockPos / 2)
                cumTP += blockPos
                cumFP += blockNeg
                if blockPos > 0 { ap += blockPos * (cumTP / (cumTP + cumFP)) }
            }
            i = j
        }
        let neg = n - pos
        var m: [Metric: MetricValue] = [:]
        m[.n] = .value(n)
        m[.positives] = .value(pos)
        let noRows = "no rows"
        let noPos = "no positive labels in the group"
        let noNeg = "no negative labels in the group"
        let oneClass = "needs both classes; the group has \(pos == 0 ? "no positive" : "no negative") labels"
        m[.prevalence] = .ratio(pos, n, noRows)
        m[.selectionRate] = .ratio(tp + fp, n, noRows)
        m[.tpr] = .ratio(tp, pos, noPos)
        m[.fnr] = .ratio(fn, pos, noPos)
        m[.fpr] = .ratio(fp, neg, noNeg)
        m[.tnr] = .ratio(tn, neg, noNeg)
        m[.ppv] = .ratio(tp, tp + fp, "no positive decisions in the group")
        m[.npv] = .ratio(tn, tn + fn, "no negative decisions in the group")
        m[.accuracy] = .ratio(tp + tn, n, noRows)
        if pos > 0, neg > 0 {
            m[.balancedAccuracy] = .value((tp / pos + tn / neg) / 2)
            m[.auroc] = .value(auc / (pos * neg))
        } else {
            m[.balancedAccuracy] = .undefined(oneClass)
            m[.auroc] = .undefined(oneClass)
        }
        m[.auprc] = .ratio(ap, pos, noPos)
        m[.brier] = .ratio(brier, n, noRows)
        if n > 0 {
            var ece = 0.0
            for b in 0..<eceBins where binN[b] > 0 {
                ece += binN[b] / n * abs(binLabel[b] / binN[b] - binRisk[b] / binN[b])
            }
            m[.ece] = .value(ece)
        } else {
            m[.ece] = .undefined(noRows)
        }
        switch LogisticCalibration.fit(s, weights: weights) {
        case .success(let c):
            m[.calibrationSlope] = .value(c.slope)
            m[.calibrationIntercept] = .value(c.intercept)
        case .failure(let e):
            m[.calibrationSlope] = .undefined(e.reason)
            m[.calibrationIntercept] = .undefined(e.reason)
        }
        return m
    }

    /// Rows, mean risk and observed rate per ECE bin (for calibration plots), unweighted.
    package static func calibrationBins(_ s: LabelledScores) -> [(n: Int, meanRisk: Double, observed: Double)] {
        var n = [Int](repeating: 0, count: eceBins)
        var risk = [Double](repeating: 0, count: eceBins), pos = risk
        for (r, y) in zip(s.risks, s.labels) {
            let b = min(Int((r * Double(eceBins)).rounded(.down)), eceBins - 1)
            n[b] += 1
            risk[b] += r
            if y { pos[b] += 1 }
        }
        return (0..<eceBins).map { b in (n[b], n[b] > 0 ? risk[b] / Double(n[b]) : .nan, n[b] > 0 ? pos[b] / Double(n[b]) : .nan) }
    }
}
