/// The curves an audit report draws for one group.
package struct GroupCurves: Sendable {
    package struct ROCPoint: Sendable, Equatable { public let fpr: Double, tpr: Double }
    package struct CalibrationBin: Sendable, Equatable { public let n: Int, meanRisk: Double, observed: Double }
    /// Rates if every row of the group were decided at `threshold` (risk >= threshold).
    package struct TradeoffPoint: Sendable, Equatable {
        package let threshold: Double
        package let tpr: Double?
        package let fpr: Double?
        package let selectionRate: Double
    }

    /// Empty when the group has one class.
    package var roc: [ROCPoint]
    package var calibration: [CalibrationBin]
    package var tradeoff: [TradeoffPoint]

    /// ROC vertices at each distinct risk (thinned to at most `maxPoints`, keeping the ends),
    /// the ECE bins, and the trade-off at each threshold of `grid`.
    package static func compute(_ s: LabelledScores, grid: [Double], maxPoints: Int = 400) -> GroupCurves {
        let pos = Double(s.labels.filter { $0 }.count), neg = Double(s.count) - pos
        var roc: [ROCPoint] = []
        if pos > 0, neg > 0 {
            roc.append(ROCPoint(fpr: 0, tpr: 0))
            var tp = 0.0, fp = 0.0, i = 0
            while i < s.count {
                var j = i
                while j < s.count, s.risks[j] == s.risks[i] {
                    if s.labels[j] { tp += 1 } else { fp += 1 }
                    j += 1
                }
                roc.append(ROCPoint(fpr: fp / neg, tpr: tp / pos))
                i = j
            }
            if roc.count > maxPoints {
                let step = Double(roc.count - 1) / Double(maxPoints - 1)
                roc = (0..<maxPoints).map { roc[Int((Double($0) * step).rounded())] }
            }
        }
        let calibration = GroupMetrics.calibrationBins(s).map { CalibrationBin(n: $0.n, meanRisk: $0.meanRisk, observed: $0.observed) }
        // Walk the risks (descending) while the grid thresholds descend.
        var tradeoff: [TradeoffPoint] = []
        var tp = 0.0, fp = 0.0, k = 0
        for t in grid.sorted(by: >) {
            while k < s.count, s.risks[k] >= t {
                if s.labels[k] { tp += 1 } else { fp += 1 }
                k += 1
            }
            tradeoff.append(TradeoffPoint(threshold: t, tpr: pos > 0 ? tp / pos : nil, fpr: neg > 0 ? fp / neg : nil,
                                          selectionRate: s.count > 0 ? (tp + fp) / Double(s.count) : 0))
        }
        tradeoff.reverse()
        return GroupCurves(roc: roc, calibration: calibration, tradeoff: tradeoff)
    }
}
