package import VigilStatistics
package import VigilGuard
/// One group's candidate operating points for `risk >= threshold`, exactly: one point per
/// distinct risk of the group (deciding positive every row at or above it), plus "select none"
/// when the largest risk is below 1. Points run from the highest threshold to the lowest, so TP,
/// FP, TPR, FPR and selection rate never decrease along them. Built with one sort and
/// cumulative counts.
///
/// Where the threshold sits: halfway between the point's lowest selected risk and the next
/// lower distinct risk of the group (the lowest point keeps the lowest risk; "select none" sits
/// halfway between the largest risk and 1). On the fitting data this decides exactly as the
/// risk itself would, but a row whose risk differs in the last bits between runtimes (Vigil's
/// kernels and the training library agree to ~1e-16, not bit for bit) cannot flip across it.
package struct OperatingCurve: Sendable {
    package let thresholds: [Double]
    /// The lowest risk each point selects (+infinity for "select none").
    package let lowestSelected: [Double]
    /// Cumulative true and false positives at each point.
    package let tp: [Int]
    package let fp: [Int]
    package let positives: Int
    package let negatives: Int

    package var n: Int { positives + negatives }
    package var count: Int { thresholds.count }

    package init(risks: [Double], labels: [Bool]) {
        let order = risks.indices.sorted { risks[$0] > risks[$1] }
        var lowest: [Double] = [], tp: [Int] = [], fp: [Int] = []
        if let top = order.first.map({ risks[$0] }), top < 1 {
            lowest.append(.infinity)
            tp.append(0)
            fp.append(0)
        }
        var t = 0, f = 0, i = 0
        while i < order.count {
            let r = risks[order[i]]
            while i < order.count, risks[order[i]] == r {
                if labels[order[i]] { t += 1 } else { f += 1 }
                i += 1
            }
            lowest.append(r)
            tp.append(t)
            fp.append(f)
        }
        var thresholds = [Double](repeating: 0, count: lowest.count)
        for k in lowest.indices {
            let hi = lowest[k].isFinite ? lowest[k] : 1
            guard k + 1 < lowest.count else { thresholds[k] = hi; break }
            let lo = lowest[k + 1]
            let mid = lo + (hi - lo) / 2
            // Adjacent doubles have no midpoint: then the risk itself.
            thresholds[k] = mid > lo && mid <= hi ? mid : hi
        }
        self.thresholds = thresholds
        self.lowestSelected = lowest
        self.tp = tp
        self.fp = fp
        positives = t
        negatives = f
    }

    package func tpr(_ i: Int) -> Double? { positives > 0 ? Double(tp[i]) / Double(positives) : nil }
    package func fpr(_ i: Int) -> Double? { negatives > 0 ? Double(fp[i]) / Double(negatives) : nil }
    package func selectionRate(_ i: Int) -> Double { n > 0 ? Double(tp[i] + fp[i]) / Double(n) : 0 }

    /// The point any threshold `t` lands on: the one selecting exactly the rows with risk >= t,
    /// i.e. the last point whose lowest selected risk is >= t (the first point when no risk is;
    /// for a group whose largest risk is 1, that point selects the rows at 1).
    package func index(ofThreshold t: Double) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if lowestSelected[mid] >= t { lo = mid + 1 } else { hi = mid }
        }
        return max(lo - 1, 0)
    }
}
