/// One group's candidate operating points for `risk >= threshold`, exactly: one point per
/// distinct risk of the group (deciding positive every row at or above it), plus "select none"
/// at the next double above the largest risk when that is still <= 1. Points run from the
/// highest threshold to the lowest, so TP, FP, TPR, FPR and selection rate never decrease along
/// them. Built with one sort and cumulative counts.
public struct OperatingCurve: Sendable {
    public let thresholds: [Double]
    /// Cumulative true and false positives at each point.
    public let tp: [Int]
    public let fp: [Int]
    public let positives: Int
    public let negatives: Int

    public var n: Int { positives + negatives }
    public var count: Int { thresholds.count }

    public init(risks: [Double], labels: [Bool]) {
        let order = risks.indices.sorted { risks[$0] > risks[$1] }
        var thresholds: [Double] = [], tp: [Int] = [], fp: [Int] = []
        if let top = order.first.map({ risks[$0] }), top < 1 {
            thresholds.append(top.nextUp)
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
            thresholds.append(r)
            tp.append(t)
            fp.append(f)
        }
        self.thresholds = thresholds
        self.tp = tp
        self.fp = fp
        positives = t
        negatives = f
    }

    public func tpr(_ i: Int) -> Double? { positives > 0 ? Double(tp[i]) / Double(positives) : nil }
    public func fpr(_ i: Int) -> Double? { negatives > 0 ? Double(fp[i]) / Double(negatives) : nil }
    public func selectionRate(_ i: Int) -> Double { n > 0 ? Double(tp[i] + fp[i]) / Double(n) : 0 }

    /// The point a threshold lands on: the first (highest) point whose threshold is <= t.
    public func index(ofThreshold t: Double) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if thresholds[mid] <= t { hi = mid } else { lo = mid + 1 }
        }
        // Below every risk: everything is selected, the last point.
        return min(lo, count - 1)
    }
}
