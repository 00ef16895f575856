package import VigilStatistics
package import VigilGuard
import VigilCore

/// What a fitted policy equalises across groups (docs/FORMATS.md, `constraint.kind`).
package enum FairnessConstraint: Sendable, Equatable {
    /// Each group's threshold maximises the objective on its own.
    case none
    /// max - min of the groups' true-positive rates <= tolerance (equal opportunity).
    case tprParity
    /// Same as TPR parity (FNR = 1 - TPR has the same gaps), named for readers who think in misses.
    case fnrParity
    case fprParity
    /// Both the TPR gap and the FPR gap <= tolerance.
    case equalizedOdds
    /// Gap in selection rates <= tolerance.
    case demographicParity
    /// Every group's TPR >= target; each group takes the highest such threshold (best specificity).
    case minSensitivity(Double)

    package var name: String {
        switch self {
        case .none: return "none"
        case .tprParity: return "tpr_parity"
        case .fnrParity: return "fnr_parity"
        case .fprParity: return "fpr_parity"
        case .equalizedOdds: return "equalized_odds"
        case .demographicParity: return "demographic_parity"
        case .minSensitivity: return "min_sensitivity"
        }
    }

    package static let names = ["none", "tpr_parity", "fnr_parity", "fpr_parity", "equalized_odds", "demographic_parity", "min_sensitivity"]

    /// From a name; `min_sensitivity` needs `target`.
    package init(name: String, target: Double?) throws {
        switch name {
        case "none": self = .none
        case "tpr_parity": self = .tprParity
        case "fnr_parity": self = .fnrParity
        case "fpr_parity": self = .fprParity
        case "equalized_odds": self = .equalizedOdds
        case "demographic_parity": self = .demographicParity
        case "min_sensitivity":
            guard let target else { throw VigilError(.usage, "constraint min_sensitivity needs a target sensitivity (--target S, 0 < S <= 1)") }
            guard target > 0, target <= 1 else { throw VigilError(.usage, "--target \(target): a minimum sensitivity must be in (0, 1]") }
            self = .minSensitivity(target)
        default:
            throw VigilError(.usage, "constraint '\(name)' is not one of \(Self.names.joined(separator: ", "))")
        }
        if target != nil, name != "min_sensitivity" {
            throw VigilError(.usage, "--target applies only to min_sensitivity, not \(name)")
        }
    }

    /// Whether a group needs positive labels (TPR defined) to take part.
    var needsPositives: Bool {
        switch self {
        case .tprParity, .fnrParity, .equalizedOdds, .minSensitivity: return true
        default: return false
        }
    }

    var needsNegatives: Bool {
        switch self {
        case .fprParity, .equalizedOdds: return true
        default: return false
        }
    }
}

/// What a fitted policy maximises over all fitted rows (pooled, not averaged over groups).
package enum FitObjective: Sendable, Equatable {
    /// (TP + TN) / n.
    case accuracy
    /// (TP / P + TN / N) / 2, with P and N the cohort's positives and negatives.
    case balancedAccuracy
    /// Minimises (costFN * FN + costFP * FP) / n; the value reported is that mean cost.
    case cost(fn: Double, fp: Double)

    package var name: String {
        switch self {
        case .accuracy: return "accuracy"
        case .balancedAccuracy: return "balanced_accuracy"
        case .cost: return "cost"
        }
    }

    package static let names = ["accuracy", "balanced_accuracy", "cost"]

    package init(name: String, costFN: Double?, costFP: Double?) throws {
        switch name {
        case "accuracy": self = .accuracy
        case "balanced_accuracy": self = .balancedAccuracy
        case "cost":
            guard let fn = costFN, let fp = costFP else { throw VigilError(.usage, "objective cost needs --cost-fn and --cost-fp") }
            guard fn.isFinite, fp.isFinite, fn >= 0, fp >= 0, fn + fp > 0 else {
                throw VigilError(.usage, "--cost-fn \(fn) and --cost-fp \(fp) must be finite, >= 0 and not both 0")
            }
            self = .cost(fn: fn, fp: fp)
        default:
            throw VigilError(.usage, "objective '\(name)' is not one of \(Self.names.joined(separator: ", "))")
        }
        if name != "cost", costFN != nil || costFP != nil {
            throw VigilError(.usage, "--cost-fn and --cost-fp apply only to the cost objective, not \(name)")
        }
    }

    /// A group's additive share of the score to maximise (the negative cost for `cost`), given
    /// the cohort's row, positive and negative counts.
    func contribution(tp: Int, fp: Int, positives: Int, negatives: Int, total: (n: Int, p: Int, neg: Int)) -> Double {
        let fn = positives - tp, tn = negatives - fp
        switch self {
        case .accuracy: return Double(tp + tn) / Double(total.n)
        case .balancedAccuracy: return (Double(tp) / Double(total.p) + Double(tn) / Double(total.neg)) / 2
        case .cost(let cfn, let cfp): return -(cfn * Double(fn) + cfp * Double(fp)) / Double(total.n)
        }
    }

    /// The reported value (mean cost for `cost`, else the score).
    func report(_ score: Double) -> Double {
        if case .cost = self { return -score }
        return score
    }

    /// Whether larger reported values are better.
    package var higherIsBetter: Bool {
        if case .cost = self { return false }
        return true
    }
}

/// Fits per-group thresholds for `risk >= threshold` from labelled risks: an exact search over
/// every group's candidate thresholds (its distinct risks, `OperatingCurve`), deterministic, no
/// randomisation.
///
/// Parity constraints ask that the groups' rates lie within `tolerance` of each other. Any
/// feasible choice has its rates in some window `[L, L + tolerance]` with `L` one of the groups'
/// rates, so the search sweeps `L` over all of them; for each `L`, each group independently takes
/// its best point with a rate inside the window (a sliding-window maximum, amortised O(1) per
/// point), and the objective, being a sum of per-group shares, is the sum of those bests.
/// Equalized odds sweeps the TPR window's `L` and, inside it, the FPR window the same way.
/// Ties in the objective go to the smaller gap, then to the first found (lowest `L`).
///
/// Groups with fewer than `minGroupSize` rows, and groups whose constrained rate is undefined
/// (no positives for TPR, no negatives for FPR), take the fallback threshold and do not enter
/// the constraint. The fallback is the single threshold that is best for the objective over all
/// rows (for `min_sensitivity`: the highest threshold whose pooled TPR reaches the target).
package enum ThresholdFitter {
    package struct Options: Sendable {
        package var constraint: FairnessConstraint
        package var objective: FitObjective
        package var tolerance: Double
        package var minGroupSize: Int

        package init(constraint: FairnessConstraint, objective: FitObjective, tolerance: Double = 0, minGroupSize: Int = 0) {
            self.constraint = constraint
            self.objective = objective
            self.tolerance = tolerance
            self.minGroupSize = minGroupSize
        }
    }

    package struct GroupFit: Sendable, Equatable {
        package let key: String
        package let n: Int
        package let positives: Int
        package let negatives: Int
        /// The group's threshold, or the fallback threshold when `fallbackReason` is set or the
        /// group is below the minimum size.
        package let threshold: Double
        package let tpr: Double?
        package let fpr: Double?
        package let selectionRate: Double
        /// Why the group takes the fallback (other than size, which the policy's rule covers).
        package let fallbackReason: String?
        /// Whether the group took part in the constraint.
        package let constrained: Bool
    }

    package struct Result: Sendable {
        package let options: Options
        /// Sorted by key.
        package let groups: [GroupFit]
        package let fallbackThreshold: Double
        package let rows: Int
        package let positives: Int
        /// The objective over all rows with the fitted thresholds (mean cost for `cost`).
        package let objective: Double
        /// The objective of the fallback threshold applied to everyone (the unconstrained
        /// single-threshold baseline).
        package let baselineObjective: Double
        /// The constraint's gap over the constrained groups (max of both gaps for equalized
        /// odds; for min_sensitivity, how far the lowest TPR falls below the target, 0 if none);
        /// nil when fewer than two groups are constrained or the constraint is `none`.
        package let violation: Double?
        package let notes: [String]
    }

    package static func fit(risks: [Double], labels: [Bool], groupKeys: [String], options: Options) throws -> Result {
        guard risks.count == labels.count, risks.count == groupKeys.count else {
            throw VigilError(.input, "fit: \(risks.count) risks, \(labels.count) labels and \(groupKeys.count) group keys must have one entry per row")
        }
        if let bad = risks.firstIndex(where: { !($0.isFinite && $0 >= 0 && $0 <= 1) }) {
            throw VigilError(.input, "fit: risk \(risks[bad]) of row \(bad + 1) is not a probability in [0, 1]")
        }
        guard options.tolerance.isFinite, options.tolerance >= 0, options.tolerance <= 1 else {
            throw VigilError(.usage, "--tolerance \(options.tolerance) must be in [0, 1]")
        }
        guard options.minGroupSize >= 0 else { throw VigilError(.usage, "--min-group-size \(options.minGroupSize) must be >= 0") }
        let n = risks.count
        let p = labels.filter { $0 }.count
        guard p > 0, p < n else {
            throw VigilError(.input, "fit: the cohort's labels are all \(p == 0 ? "0" : "1") (\(n) rows); fitting thresholds needs both classes")
        }
        let total = (n: n, p: p, neg: n - p)
        let objective = options.objective
        func contribution(_ c: OperatingCurve, _ i: Int) -> Double {
            objective.contribution(tp: c.tp[i], fp: c.fp[i], positives: c.positives, negatives: c.negatives, total: total)
        }

        // Fallback: one threshold for everyone.
        let pooled = OperatingCurve(risks: risks, labels: labels)
        let fallbackIndex: Int
        if case .minSensitivity(let s) = options.constraint {
            fallbackIndex = (0..<pooled.count).first { pooled.tpr($0)! >= s }!
        } else {
            fallbackIndex = argmax(0..<pooled.count) { contribution(pooled, $0) }
        }
        let fallback = pooled.thresholds[fallbackIndex]

        // Groups, sorted by key.
        var members: [String: [Int]] = [:]
        for (i, k) in groupKeys.enumerated() { members[k, default: []].append(i) }
        let keys = members.keys.sorted()
        let curves = keys.map { k in OperatingCurve(risks: members[k]!.map { risks[$0] }, labels: members[k]!.map { labels[$0] }) }
        var notes: [String] = []
        var reasons: [String?] = Array(repeating: nil, count: keys.count)
        var active: [Int] = []
        for (g, c) in curves.enumerated() {
            if c.n < options.minGroupSize {
                notes.append("group '\(keys[g])' has \(c.n) rows, below the minimum of \(options.minGroupSize): it takes the fallback threshold")
                continue
            }
            if options.constraint.needsPositives, c.positives == 0 {
                reasons[g] = "no positive labels at fitting: its TPR is undefined"
            } else if options.constraint.needsNegatives, c.negatives == 0 {
                reasons[g] = "no negative labels at fitting: its FPR is undefined"
            }
            if let r = reasons[g] {
                notes.append("group '\(keys[g])': \(r); it takes the fallback threshold")
                continue
            }
            active.append(g)
        }

        // The search, over active groups.
        var choice = [Int](repeating: -1, count: keys.count)
        let share = active.map { g in (0..<curves[g].count).map { contribution(curves[g], $0) } }
        func rates(_ f: (OperatingCurve, Int) -> Double) -> [[Double]] {
            active.map { g in (0..<curves[g].count).map { f(curves[g], $0) } }
        }
        let full = active.map { 0..<curves[$0].count }
        switch options.constraint {
        case .none:
            for (a, g) in active.enumerated() { choice[g] = argmax(full[a]) { share[a][$0] } }
        case .minSensitivity(let s):
            for g in active { choice[g] = (0..<curves[g].count).first { curves[g].tpr($0)! >= s }! }
        case .tprParity, .fnrParity, .fprParity, .demographicParity:
            let metric: [[Double]]
            switch options.constraint {
            case .fprParity: metric = rates { $0.fpr($1)! }
            case .demographicParity: metric = rates { $0.selectionRate($1) }
            default: metric = rates { $0.tpr($1)! }
            }
            if let best = bestWindow(metric: metric, share: share, ranges: full, tolerance: options.tolerance) {
                for (a, g) in active.enumerated() { choice[g] = best.choice[a] }
            }
        case .equalizedOdds:
            let tpr = rates { $0.tpr($1)! }, fpr = rates { $0.fpr($1)! }
            var best: Window?
            for l1 in Set(tpr.joined()).sorted() {
                var ranges: [Range<Int>] = []
                for a in active.indices {
                    let lo = lowerBound(tpr[a], l1)
                    let hi = upperBound(tpr[a]) { $0 - l1 <= options.tolerance }
                    guard lo < hi else { break }
                    ranges.append(lo..<hi)
                }
                guard ranges.count == active.count,
                      let w = bestWindow(metric: fpr, share: share, ranges: ranges, tolerance: options.tolerance) else { continue }
                let gap = max(spread(w.choice.indices.map { tpr[$0][w.choice[$0]] }), w.spread)
                if best == nil || w.value > best!.value || (w.value == best!.value && gap < best!.spread) {
                    best = Window(value: w.value, choice: w.choice, spread: gap)
                }
            }
            if let best { for (a, g) in active.enumerated() { choice[g] = best.choice[a] } }
        }

        // Results: every group's operating point at its final threshold.
        var groups: [GroupFit] = []
        var tpAll = 0, fpAll = 0
        for (g, c) in curves.enumerated() {
            let t = choice[g] >= 0 ? c.thresholds[choice[g]] : fallback
            let i = choice[g] >= 0 ? choice[g] : c.index(ofThreshold: t)
            tpAll += c.tp[i]
            fpAll += c.fp[i]
            groups.append(GroupFit(
                key: keys[g], n: c.n, positives: c.positives, negatives: c.negatives, threshold: t,
                tpr: c.tpr(i), fpr: c.fpr(i), selectionRate: c.selectionRate(i), fallbackReason: reasons[g],
                constrained: choice[g] >= 0))
        }
        let score = objective.contribution(tp: tpAll, fp: fpAll, positives: p, negatives: n - p, total: total)
        let constrained = groups.filter(\.constrained)
        var violation: Double?
        switch options.constraint {
        case .none: violation = nil
        case .minSensitivity(let s):
            violation = constrained.isEmpty ? nil : max(0, s - constrained.map { $0.tpr! }.min()!)
        case .tprParity, .fnrParity: violation = constrained.count < 2 ? nil : spread(constrained.map { $0.tpr! })
        case .fprParity: violation = constrained.count < 2 ? nil : spread(constrained.map { $0.fpr! })
        case .demographicParity: violation = constrained.count < 2 ? nil : spread(constrained.map(\.selectionRate))
        case .equalizedOdds:
            violation = constrained.count < 2 ? nil : max(spread(constrained.map { $0.tpr! }), spread(constrained.map { $0.fpr! }))
        }
        return Result(
            options: options, groups: groups, fallbackThreshold: fallback, rows: n, positives: p,
            objective: objective.report(score), baselineObjective: objective.report(contribution(pooled, fallbackIndex)),
            violation: violation, notes: notes)
    }

    // MARK: - Search

    struct Window {
        var value: Double
        var choice: [Int]
        var spread: Double
    }

    /// The best choice of one point per group, inside `ranges[a]`, whose `metric` values all lie
    /// in a window of width `tolerance`; `metric[a]` must be non-decreasing over `ranges[a]`.
    static func bestWindow(metric: [[Double]], share: [[Double]], ranges: [Range<Int>], tolerance: Double) -> Window? {
        let groups = ranges.count
        guard groups > 0 else { return Window(value: 0, choice: [], spread: 0) }
        var candidates: [Double] = []
        for a in 0..<groups { candidates += metric[a][ranges[a]] }
        candidates = Array(Set(candidates)).sorted()
        var lo = ranges.map(\.lowerBound), hi = lo
        // Per group, a deque (as an array and a head index) of indices in [lo, hi) whose shares
        // are non-increasing: the head is the window's best, the earliest among equals.
        var deque = [[Int]](repeating: [], count: groups)
        var head = [Int](repeating: 0, count: groups)
        var best: Window?
        for l in candidates {
            var feasible = true
            var value = 0.0
            for a in 0..<groups {
                while hi[a] < ranges[a].upperBound, metric[a][hi[a]] - l <= tolerance {
                    let s = share[a][hi[a]]
                    while deque[a].count > head[a], share[a][deque[a].last!] < s { deque[a].removeLast() }
                    deque[a].append(hi[a])
                    hi[a] += 1
                }
                while lo[a] < hi[a], metric[a][lo[a]] < l { lo[a] += 1 }
                while deque[a].count > head[a], deque[a][head[a]] < lo[a] { head[a] += 1 }
                if deque[a].count == head[a] { feasible = false; break }
                value += share[a][deque[a][head[a]]]
            }
            guard feasible else { continue }
            let choice = (0..<groups).map { deque[$0][head[$0]] }
            if best == nil || value > best!.value {
                best = Window(value: value, choice: choice, spread: spread((0..<groups).map { metric[$0][choice[$0]] }))
            } else if value == best!.value {
                let s = spread((0..<groups).map { metric[$0][choice[$0]] })
                if s < best!.spread { best = Window(value: value, choice: choice, spread: s) }
            }
        }
        return best
    }

    static func spread(_ v: [Double]) -> Double { (v.max() ?? 0) - (v.min() ?? 0) }

    /// The first index of `range` with the largest `f` (the highest threshold among ties).
    static func argmax(_ range: Range<Int>, _ f: (Int) -> Double) -> Int {
        var best = range.lowerBound, value = f(best)
        for i in range.dropFirst() {
            let v = f(i)
            if v > value { best = i; value = v }
        }
        return best
    }

    /// First index with `v[i] >= x` (v non-decreasing).
    static func lowerBound(_ v: [Double], _ x: Double) -> Int {
        var lo = 0, hi = v.count
        while lo < hi { let m = (lo + hi) / 2; if v[m] < x { lo = m + 1 } else { hi = m } }
        return lo
    }

    /// One past the last index where `ok` holds (`ok` true on a prefix).
    static func upperBound(_ v: [Double], _ ok: (Double) -> Bool) -> Int {
        var lo = 0, hi = v.count
        while lo < hi { let m = (lo + hi) / 2; if ok(v[m]) { lo = m + 1 } else { hi = m } }
        return lo
    }
}
