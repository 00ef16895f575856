package import VigilStatistics
package import VigilGuard
internal import VigilKernels
import VigilCore

/// A fairness audit of decided, labelled rows: metrics per group and overall, Fairlearn's
/// disparity summaries, AIF360's comparisons with a reference group, and percentile bootstrap
/// confidence intervals for all of them.
///
/// Views: every non-empty combination of the group fields, in order (`race`, `sex`,
/// `race|sex`, ...); a row's group in a view is its labels joined by `|`.
///
/// Bootstrap (`Resampling`): stratified by the view's groups (each group resampled with
/// replacement to its own size, so a replicate never loses a group; the overall figures take the
/// union of the resampled groups), or by whole clusters when rows repeat a patient. Replicate r draws from `Bootstrap.generator(seed:replicate:)`, so the
/// intervals depend only on the seed, not on the thread count.
package enum FairnessAudit {
    package struct Data: Sendable {
        package let risks: [Double]
        package let labels: [Bool]
        package let decisions: [Bool]
        package let fields: [String]
        /// `groupLabels[f][row]`: the label of row `row` for field `fields[f]`.
        package let groupLabels: [[String]]

        package init(risks: [Double], labels: [Bool], decisions: [Bool], fields: [String], groupLabels: [[String]]) throws {
            guard groupLabels.count == fields.count, groupLabels.allSatisfy({ $0.count == risks.count }) else {
                throw VigilError(.input, "audit: every group field needs one label per row")
            }
            guard Set(fields).count == fields.count else {
                throw VigilError(.usage, "audit: group field listed twice in \(fields)")
            }
            self.risks = risks
            self.labels = labels
            self.decisions = decisions
            self.fields = fields
            self.groupLabels = groupLabels
        }
    }

    package struct Options: Sendable {
        package var replicates: Int = 1000
        package var seed: UInt64 = 20240601
        package var minGroupSize: Int = 30
        package var confidence: Double = 0.95
        /// Reference group per view name (`race` -> `White`); default: the view's largest eligible group.
        package var references: [String: String] = [:]
        /// Thresholds for the trade-off curves.
        package var tradeoffGrid: [Double] = (0...100).map { Double($0) / 100 }
        package var threads: Int? = nil
        /// Rows stratified by group (default) or whole clusters (`--cluster`).
        package var resampling: Resampling = .stratifiedRows

        package init() {}
    }

    package struct Group: Sendable {
        package let key: String
        package let n: Int
        package let eligible: Bool
        package let metrics: [Metric: MetricValue]
        package let intervals: [Metric: Interval]
        /// Against the view's reference group (nil for the reference itself and for `overall`).
        package let comparison: ReferenceComparison?
        package let comparisonIntervals: [Interval?]
        package let curves: GroupCurves
    }

    package struct View: Sendable {
        package let name: String
        package let fields: [String]
        package let groups: [Group]
        package let reference: String?
        package let disparities: [Metric: Disparity]
        /// Intervals for `differenceBetweenGroups`, `differenceToOverall`, `ratioBetweenGroups`,
        /// `ratioToOverall`, keyed by those names.
        package let disparityIntervals: [Metric: [String: Interval]]
        package let warnings: [String]
    }

    package struct Result: Sendable {
        package let rows: Int
        package let overall: Group
        package let views: [View]
        package let options: Options
    }

    package static func run(_ data: Data, options: Options = Options()) throws -> Result {
        guard options.replicates >= 0 else { throw VigilError(.usage, "--bootstrap \(options.replicates) must be >= 0") }
        guard options.confidence > 0, options.confidence < 1 else { throw VigilError(.usage, "confidence \(options.confidence) must be in (0, 1)") }
        let n = data.risks.count
        guard n > 0 else { throw VigilError(.input, "audit: the cohort has no rows") }
        let all = try LabelledScores(risks: data.risks, labels: data.labels, decisions: data.decisions)
        let overallView = try view(name: "overall", fields: [], partition: [("overall", Array(0..<n))], all: all, data: data, options: options, isOverall: true)
        let views = try partitions(fields: data.fields, groupLabels: data.groupLabels, count: n).map { v in
            try view(name: v.name, fields: v.fields, partition: v.groups, all: all, data: data, options: options, isOverall: false)
        }
        return Result(rows: n, overall: overallView.groups[0], views: views, options: options)
    }

    /// The views of an audit (and of `vigil compare`): every non-empty combination of the group
    /// fields, singles first, then pairs, ..., each in field order; in each, the groups' rows,
    /// largest group first (ties by key).
    package static func partitions(fields: [String], groupLabels: [[String]], count n: Int) -> [(name: String, fields: [String], groups: [(key: String, rows: [Int])])] {
        let f = fields.count
        let subsets = (1..<(1 << f)).map { mask in (0..<f).filter { mask & (1 << $0) != 0 } }
            .sorted { $0.count != $1.count ? $0.count < $1.count : $0.lexicographicallyPrecedes($1) }
        return subsets.map { subset in
            var partition: [String: [Int]] = [:]
            for r in 0..<n {
                partition[subset.map { groupLabels[$0][r] }.joined(separator: "|"), default: []].append(r)
            }
            let ordered = partition.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }
            return (subset.map { fields[$0] }.joined(separator: "|"), subset.map { fields[$0] }, ordered.map { ($0.key, $0.value) })
        }
    }

    /// Point estimates of everything a view reports, from per-group and overall metrics.
    private struct Summary {
        var disparities: [Metric: Disparity] = [:]
        var comparisons: [ReferenceComparison?] = []

        init(groups: [[Metric: MetricValue]], keys: [String], eligible: [Bool], overall: [Metric: MetricValue], reference: Int?) {
            for m in Metric.allCases where !m.isCount {
                disparities[m] = Disparity.compute(
                    byGroup: groups.indices.map { (keys[$0], groups[$0][m]!, eligible[$0]) }, overall: overall[m]!)
            }
            comparisons = groups.indices.map { g in
                guard let reference, g != reference else { return nil }
                return ReferenceComparison.compute(group: groups[g], reference: groups[reference])
            }
        }

        /// Every scalar with a stable key, for bootstrap intervals.
        func scalars(groups: [[Metric: MetricValue]], overall: [Metric: MetricValue]) -> [String: Double] {
            var out: [String: Double] = [:]
            for (g, metrics) in groups.enumerated() {
                for (m, v) in metrics where !m.isCount { if let x = v.value { out["g\(g)/\(m.rawValue)"] = x } }
            }
            for (m, v) in overall where !m.isCount { if let x = v.value { out["o/\(m.rawValue)"] = x } }
            for (m, d) in disparities {
                for (name, v) in Self.disparityParts(d) { if let x = v.value { out["d/\(name)/\(m.rawValue)"] = x } }
            }
            for (g, c) in comparisons.enumerated() {
                guard let c else { continue }
                for (i, v) in c.all.enumerated() { if let x = v.value { out["c\(g)/\(i)"] = x } }
            }
            return out
        }

        static func disparityParts(_ d: Disparity) -> [(String, MetricValue)] {
            [("difference_between_groups", d.differenceBetweenGroups), ("difference_to_overall", d.differenceToOverall),
             ("ratio_between_groups", d.ratioBetweenGroups), ("ratio_to_overall", d.ratioToOverall)]
        }
    }

    private static func view(
        name: String, fields: [String], partition: [(key: String, rows: [Int])], all: LabelledScores, data: Data,
        options: Options, isOverall: Bool
    ) throws -> View {
        let scores = try partition.map { p in
            try LabelledScores(risks: p.rows.map { data.risks[$0] }, labels: p.rows.map { data.labels[$0] },
                               decisions: p.rows.map { data.decisions[$0] }, rowIndices: p.rows)
        }
        let keys = partition.map(\.key)
        let eligible = partition.map { isOverall || $0.rows.count >= options.minGroupSize }
        let metrics = scores.map { GroupMetrics.compute($0) }
        let overall = isOverall ? metrics[0] : GroupMetrics.compute(all)
        var warnings: [String] = []
        for (i, p) in partition.enumerated() where !eligible[i] {
            warnings.append("group '\(p.key)' of '\(name)' has \(p.rows.count) rows, below the minimum of \(options.minGroupSize): its metrics are shown but left out of the disparity summaries")
        }
        for (i, p) in partition.enumerated() where eligible[i] && metrics[i][.positives]!.value == 0 {
            warnings.append("group '\(p.key)' of '\(name)' has no positive labels: TPR, FNR, AUROC, AUPRC and calibration are undefined")
        }
        var reference: Int?
        if !isOverall {
            if let wanted = options.references[name] {
                guard let i = keys.firstIndex(of: wanted) else {
                    throw VigilError(.usage, "--reference \(name)=\(wanted): no such group (groups: \(keys.joined(separator: ", ")))")
                }
                reference = i
            } else {
                // The largest eligible group with positive labels (the partition is ordered by
                // size): against a group without positives every equal-opportunity comparison is
                // undefined. Without one, the largest eligible group.
                let withPositives = keys.indices.first { eligible[$0] && (metrics[$0][.positives]!.value ?? 0) > 0 }
                reference = withPositives ?? eligible.firstIndex(of: true)
                if let r = reference, let largest = eligible.firstIndex(of: true), r != largest {
                    warnings.append("reference group of '\(name)': '\(keys[r])', the largest with positive labels ('\(keys[largest])' has none); give --reference \(name)=GROUP to choose")
                }
            }
        }
        let summary = Summary(groups: metrics, keys: keys, eligible: eligible, overall: overall, reference: reference)

        // Bootstrap replicates.
        let b = options.replicates
        var replicates = [[String: Double]](repeating: [:], count: b)
        if b > 0 {
            let n = data.risks.count
            replicates.withUnsafeMutableBufferPointer { out in
                let sink = UncheckedSendable(out)
                Parallel.forEachChunk(count: b, minChunk: 1, threads: options.threads ?? Parallel.cores) { range in
                    var counts = [Double](repeating: 0, count: n)
                    let strata = partition.map(\.rows)
                    for r in range {
                        Resampling.draw(options.resampling, replicate: r, seed: options.seed, strata: strata, counts: &counts)
                        let gm = scores.map { s in GroupMetrics.compute(s, weights: s.rows.map { counts[$0] }) }
                        let om = isOverall ? gm[0] : GroupMetrics.compute(all, weights: all.rows.map { counts[$0] })
                        let rs = Summary(groups: gm, keys: keys, eligible: eligible, overall: om, reference: reference)
                        sink.value[r] = rs.scalars(groups: gm, overall: om)
                    }
                }
            }
        }
        let alpha = (1 - options.confidence) / 2
        func interval(_ key: String) -> Interval? {
            guard b > 0 else { return nil }
            let v = replicates.compactMap { $0[key] }.sorted()
            guard !v.isEmpty else { return nil }
            return Interval(lower: Bootstrap.quantile(sorted: v, alpha), upper: Bootstrap.quantile(sorted: v, 1 - alpha), defined: v.count, replicates: b)
        }
        var groups: [Group] = []
        for (g, p) in partition.enumerated() {
            var iv: [Metric: Interval] = [:]
            for m in Metric.allCases where !m.isCount { iv[m] = interval(isOverall ? "o/\(m.rawValue)" : "g\(g)/\(m.rawValue)") }
            let cmp = summary.comparisons[g]
            groups.append(Group(
                key: p.key, n: p.rows.count, eligible: eligible[g], metrics: metrics[g], intervals: iv, comparison: cmp,
                comparisonIntervals: cmp == nil ? [] : (0..<4).map { interval("c\(g)/\($0)") },
                curves: GroupCurves.compute(scores[g], grid: options.tradeoffGrid)))
        }
        var dIntervals: [Metric: [String: Interval]] = [:]
        for m in Metric.allCases where !m.isCount {
            var parts: [String: Interval] = [:]
            for (partName, _) in Summary.disparityParts(summary.disparities[m]!) {
                if let i = interval("d/\(partName)/\(m.rawValue)") { parts[partName] = i }
            }
            dIntervals[m] = parts
        }
        return View(name: name, fields: fields, groups: groups, reference: reference.map { keys[$0] },
                    disparities: summary.disparities, disparityIntervals: dIntervals, warnings: warnings)
    }
}
