internal import Foundation
package import VigilStatistics
internal import VigilKernels
import VigilCore

/// Two versions of a model on the same labelled rows (`vigil compare`): every audit metric for
/// both, their paired difference (candidate - baseline) with a percentile bootstrap interval
/// from shared resamples (each replicate weights the same rows for both versions, so what the
/// rows have in common cancels), decision flips by direction and label, and the shift in risk;
/// overall and for every group of every view (the audit's views).
package enum PairedComparison {
    package struct Data: Sendable {
        package let baselineRisks: [Double]
        package let candidateRisks: [Double]
        package let baselineDecisions: [Bool]
        package let candidateDecisions: [Bool]
        package let labels: [Bool]
        package let fields: [String]
        package let groupLabels: [[String]]

        package init(baselineRisks: [Double], candidateRisks: [Double], baselineDecisions: [Bool], candidateDecisions: [Bool],
                     labels: [Bool], fields: [String], groupLabels: [[String]]) throws {
            let n = labels.count
            guard baselineRisks.count == n, candidateRisks.count == n, baselineDecisions.count == n, candidateDecisions.count == n,
                  groupLabels.count == fields.count, groupLabels.allSatisfy({ $0.count == n }) else {
                throw VigilError(.input, "compare: both versions need one risk and decision per row, and every group field one label per row")
            }
            guard Set(fields).count == fields.count else { throw VigilError(.usage, "compare: group field listed twice in \(fields)") }
            self.baselineRisks = baselineRisks
            self.candidateRisks = candidateRisks
            self.baselineDecisions = baselineDecisions
            self.candidateDecisions = candidateDecisions
            self.labels = labels
            self.fields = fields
            self.groupLabels = groupLabels
        }
    }

    package struct Options: Sendable {
        package var replicates = 1000
        package var seed: UInt64 = 20240601
        package var confidence = 0.95
        package var minGroupSize = 30
        package var resampling: Resampling = .stratifiedRows
        package var threads: Int? = nil
        package init() {}
    }

    /// Decisions that changed between the versions, by direction and label.
    package struct Flips: Sendable, Equatable {
        /// Baseline negative, candidate positive.
        package var up = 0
        /// Baseline positive, candidate negative.
        package var down = 0
        /// Positive labels the baseline flagged and the candidate misses.
        package var newlyMissed = 0
        /// Positive labels the candidate flags and the baseline missed.
        package var newlyCaught = 0
        /// Negative labels the candidate flags and the baseline did not.
        package var newFalseAlarms = 0
        /// Negative labels the baseline flagged and the candidate does not.
        package var removedFalseAlarms = 0

        package var total: Int { up + down }
    }

    package struct Group: Sendable {
        package let key: String
        package let n: Int
        package let positives: Int
        package let eligible: Bool
        package let baseline: [Metric: MetricValue]
        package let candidate: [Metric: MetricValue]
        /// candidate - baseline, undefined when either is.
        package let delta: [Metric: MetricValue]
        package let deltaIntervals: [Metric: Interval]
        package let flips: Flips
        package let meanBaselineRisk: Double
        package let meanCandidateRisk: Double
        /// Mean of candidate - baseline risk, and its interval.
        package let riskShift: Double
        package let riskShiftInterval: Interval?
        /// Mean |candidate - baseline| risk.
        package let meanAbsoluteRiskShift: Double
    }

    package struct View: Sendable {
        package let name: String
        package let fields: [String]
        package let groups: [Group]
    }

    package struct Result: Sendable {
        package let rows: Int
        package let overall: Group
        package let views: [View]
        package let options: Options
    }

    package static let metrics = Metric.allCases.filter { !$0.isCount }

    package static func run(_ data: Data, options: Options = Options()) throws -> Result {
        guard options.replicates >= 0 else { throw VigilError(.usage, "--bootstrap \(options.replicates) must be >= 0") }
        guard options.confidence > 0, options.confidence < 1 else { throw VigilError(.usage, "confidence \(options.confidence) must be in (0, 1)") }
        let n = data.labels.count
        guard n > 0 else { throw VigilError(.input, "compare: the cohort has no rows") }
        let overall = try view(name: "overall", fields: [], partition: [("overall", Array(0..<n))], data: data, options: options, isOverall: true)
        let views = try FairnessAudit.partitions(fields: data.fields, groupLabels: data.groupLabels, count: n).map { v in
            try view(name: v.name, fields: v.fields, partition: v.groups, data: data, options: options, isOverall: false)
        }
        return Result(rows: n, overall: overall.groups[0], views: views, options: options)
    }

    static func deltas(_ a: [Metric: MetricValue], _ b: [Metric: MetricValue]) -> [Metric: MetricValue] {
        var d: [Metric: MetricValue] = [:]
        for m in metrics {
            if let x = a[m]?.value, let y = b[m]?.value {
                d[m] = .value(y - x)
            } else {
                d[m] = .undefined(a[m]?.reason.map { "baseline: \($0)" } ?? b[m]?.reason.map { "candidate: \($0)" } ?? "undefined")
            }
        }
        return d
    }

    private static func view(name: String, fields: [String], partition: [(key: String, rows: [Int])], data: Data, options: Options, isOverall: Bool) throws -> View {
        func scores(_ risks: [Double], _ decisions: [Bool], _ rows: [Int]) throws -> LabelledScores {
            try LabelledScores(risks: rows.map { risks[$0] }, labels: rows.map { data.labels[$0] }, decisions: rows.map { decisions[$0] }, rowIndices: rows)
        }
        let a = try partition.map { try scores(data.baselineRisks, data.baselineDecisions, $0.rows) }
        let b = try partition.map { try scores(data.candidateRisks, data.candidateDecisions, $0.rows) }
        let ma = a.map { GroupMetrics.compute($0) }
        let mb = b.map { GroupMetrics.compute($0) }

        let reps = options.replicates
        // replicate r, group g, metric k (metrics, then the risk shift): NaN where undefined.
        let width = metrics.count + 1
        var samples = [Double](repeating: .nan, count: reps * partition.count * width)
        if reps > 0 {
            let strata = partition.map(\.rows)
            samples.withUnsafeMutableBufferPointer { out in
                let sink = UncheckedSendable(out)
                Parallel.forEachChunk(count: reps, minChunk: 1, threads: options.threads ?? Parallel.cores) { range in
                    var counts = [Double](repeating: 0, count: data.labels.count)
                    for r in range {
                        Resampling.draw(options.resampling, replicate: r, seed: options.seed, strata: strata, counts: &counts)
                        for g in partition.indices {
                            let ga = GroupMetrics.compute(a[g], weights: a[g].rows.map { counts[$0] })
                            let gb = GroupMetrics.compute(b[g], weights: b[g].rows.map { counts[$0] })
                            let base = (r * partition.count + g) * width
                            for (k, m) in metrics.enumerated() {
                                if let x = ga[m]?.value, let y = gb[m]?.value { sink.value[base + k] = y - x }
                            }
                            var w = 0.0, s = 0.0
                            for row in partition[g].rows where counts[row] > 0 {
                                w += counts[row]
                                s += counts[row] * (data.candidateRisks[row] - data.baselineRisks[row])
                            }
                            if w > 0 { sink.value[base + metrics.count] = s / w }
                        }
                    }
                }
            }
        }
        let alpha = (1 - options.confidence) / 2
        func interval(group g: Int, slot k: Int) -> Interval? {
            guard reps > 0 else { return nil }
            let v = (0..<reps).map { samples[($0 * partition.count + g) * width + k] }.filter { !$0.isNaN }.sorted()
            guard !v.isEmpty else { return nil }
            return Interval(lower: Bootstrap.quantile(sorted: v, alpha), upper: Bootstrap.quantile(sorted: v, 1 - alpha), defined: v.count, replicates: reps)
        }
        var groups: [Group] = []
        for (g, p) in partition.enumerated() {
            var flips = Flips()
            var shift = 0.0, absShift = 0.0, sumA = 0.0, sumB = 0.0
            for row in p.rows {
                let (x, y) = (data.baselineDecisions[row], data.candidateDecisions[row])
                let label = data.labels[row]
                if x != y {
                    if y { flips.up += 1 } else { flips.down += 1 }
                    switch (label, y) {
                    case (true, false): flips.newlyMissed += 1
                    case (true, true): flips.newlyCaught += 1
                    case (false, true): flips.newFalseAlarms += 1
                    case (false, false): flips.removedFalseAlarms += 1
                    }
                }
                let d = data.candidateRisks[row] - data.baselineRisks[row]
                shift += d
                absShift += abs(d)
                sumA += data.baselineRisks[row]
                sumB += data.candidateRisks[row]
            }
            let count = Double(p.rows.count)
            var iv: [Metric: Interval] = [:]
            for (k, m) in metrics.enumerated() { iv[m] = interval(group: g, slot: k) }
            groups.append(Group(
                key: p.key, n: p.rows.count, positives: Int(ma[g][.positives]?.value ?? 0), eligible: isOverall || p.rows.count >= options.minGroupSize,
                baseline: ma[g], candidate: mb[g], delta: deltas(ma[g], mb[g]), deltaIntervals: iv, flips: flips,
                meanBaselineRisk: sumA / count, meanCandidateRisk: sumB / count, riskShift: shift / count,
                riskShiftInterval: interval(group: g, slot: metrics.count), meanAbsoluteRiskShift: absShift / count))
        }
        return View(name: name, fields: fields, groups: groups)
    }

    // MARK: - Findings

    /// A group where the candidate is worse than the baseline on a metric by at least the margin.
    package struct Finding: Sendable {
        package let view: String
        package let group: String
        package let n: Int
        package let positives: Int
        package let metric: Metric
        package let baseline: Double
        package let candidate: Double
        package let delta: Double
        package let interval: Interval?
        package let margin: Double
        /// The paired interval lies wholly on the worse side of 0.
        package let significant: Bool
        /// The margin came from the plan's non-inferiority entry (its id), or is the default.
        package let source: String
        /// The same metric's change over the whole cohort, for context: an FPR that rose as much
        /// everywhere is the operating point moving, not this group losing.
        package let overallDelta: Double?

        /// 1: discrimination or calibration (threshold-free: AUROC, AUPRC, ECE); 2: more missed
        /// positives (FNR); 3: the rest of the operating point (FPR, PPV, NPV).
        package var tier: Int { Self.tier(metric) }

        package static func tier(_ m: Metric) -> Int {
            switch m {
            case .auroc, .auprc, .ece: return 1
            case .fnr: return 2
            default: return 3
            }
        }
    }

    /// The metrics findings look at, with the default margin (absolute): discrimination, misses,
    /// false alarms, predictive values and calibration error. TPR and TNR are FNR and FPR mirrored.
    package static let findingMetrics: [Metric] = [.auroc, .auprc, .fnr, .fpr, .ppv, .npv, .ece]
    package static let defaultMargin = 0.02

    /// Every eligible group (and overall) where a finding metric got worse by at least its margin
    /// (the plan's, matching by metric and scope, else `defaultMargin`), most worrying first: by
    /// tier (lost discrimination or calibration, then missed positives, then the rest of the
    /// operating point, which a new threshold moves for every group at once), then significant
    /// ones, then by how far past the margin, in units of the margin.
    package static func findings(_ result: Result, margins: [ValidationPlan.NonInferiority] = []) -> [Finding] {
        var out: [Finding] = []
        func margin(_ m: Metric, view: String, group: String) -> (Double, String) {
            for ni in margins where ni.metric == m {
                switch ni.scope {
                case .overall where view == "overall": return (ni.margin, ni.id)
                case .view(let v) where v == view: return (ni.margin, ni.id)
                case .group(let v, let k) where v == view && k == group: return (ni.margin, ni.id)
                default: continue
                }
            }
            return (defaultMargin, "default")
        }
        let all = [("overall", [result.overall])] + result.views.map { ($0.name, $0.groups) }
        for (viewName, groups) in all {
            for g in groups where g.eligible {
                for m in findingMetrics {
                    guard let dir = m.direction, let d = g.delta[m]?.value, let x = g.baseline[m]?.value, let y = g.candidate[m]?.value else { continue }
                    let (mg, src) = margin(m, view: viewName, group: g.key)
                    let worse = -Double(dir) * d
                    guard worse > 0, worse >= mg else { continue }
                    let iv = g.deltaIntervals[m]
                    let significant = iv.map { dir > 0 ? $0.upper < 0 : $0.lower > 0 } ?? false
                    out.append(Finding(view: viewName, group: g.key, n: g.n, positives: g.positives, metric: m, baseline: x, candidate: y,
                                       delta: d, interval: iv, margin: mg, significant: significant, source: src,
                                       overallDelta: result.overall.delta[m]?.value))
                }
            }
        }
        return out.sorted {
            if $0.tier != $1.tier { return $0.tier < $1.tier }
            if $0.significant != $1.significant { return $0.significant }
            let a = abs($0.delta) / max($0.margin, 1e-12), b = abs($1.delta) / max($1.margin, 1e-12)
            return a != b ? a > b : ($0.view, $0.group, $0.metric.rawValue) < ($1.view, $1.group, $1.metric.rawValue)
        }
    }

    /// One judged non-inferiority line.
    package struct NonInferiorityJudgement: Sendable {
        package let margin: ValidationPlan.NonInferiority
        package let view: String
        package let group: String
        package let delta: Double?
        package let interval: Interval?
        package let status: ValidationPlan.Status
        package let reason: String
    }

    /// Judges the plan's margins: where higher is better, the lower bound of candidate - baseline
    /// must be >= -margin; where lower is better, the upper bound <= margin.
    package static func judge(_ result: Result, margins: [ValidationPlan.NonInferiority]) throws -> [NonInferiorityJudgement] {
        var out: [NonInferiorityJudgement] = []
        for ni in margins {
            let dir = ni.metric.direction ?? 1
            var targets: [(String, Group)] = []
            switch ni.scope {
            case .overall: targets = [("overall", result.overall)]
            case .view(let v):
                guard let view = result.views.first(where: { $0.name == v }) else { throw VigilError(.usage, "plan: no view '\(v)'") }
                targets = view.groups.map { (v, $0) }
            case .group(let v, let k):
                guard let view = result.views.first(where: { $0.name == v }) else { throw VigilError(.usage, "plan: no view '\(v)'") }
                guard let g = view.groups.first(where: { $0.key == k }) else {
                    out.append(NonInferiorityJudgement(margin: ni, view: v, group: k, delta: nil, interval: nil, status: .notEvaluable, reason: "no row in group \(v)=\(k)"))
                    continue
                }
                targets = [(v, g)]
            }
            for (v, g) in targets {
                guard g.eligible else {
                    out.append(NonInferiorityJudgement(margin: ni, view: v, group: g.key, delta: g.delta[ni.metric]?.value, interval: g.deltaIntervals[ni.metric],
                                                       status: ni.skipSmallGroups ? .skipped : .notEvaluable,
                                                       reason: "\(g.n) rows, below the minimum group size \(result.options.minGroupSize)" + (ni.skipSmallGroups ? " (skipped)" : ": too few to judge")))
                    continue
                }
                guard let d = g.delta[ni.metric]?.value else {
                    out.append(NonInferiorityJudgement(margin: ni, view: v, group: g.key, delta: nil, interval: nil, status: .notEvaluable,
                                                       reason: "\(ni.metric.rawValue) difference undefined: \(g.delta[ni.metric]?.reason ?? "")"))
                    continue
                }
                guard let iv = g.deltaIntervals[ni.metric] else {
                    out.append(NonInferiorityJudgement(margin: ni, view: v, group: g.key, delta: d, interval: nil, status: .notEvaluable, reason: "no bootstrap interval"))
                    continue
                }
                let ok = dir > 0 ? iv.lower >= -ni.margin : iv.upper <= ni.margin
                let bound = dir > 0 ? iv.lower : iv.upper
                let reason = String(format: "%@ bound of candidate - baseline %.4f %@ %@%.4f", dir > 0 ? "lower" : "upper", bound,
                                    ok ? (dir > 0 ? ">=" : "<=") : (dir > 0 ? "<" : ">"), dir > 0 ? "-" : "", ni.margin)
                out.append(NonInferiorityJudgement(margin: ni, view: v, group: g.key, delta: d, interval: iv, status: ok ? .pass : .fail, reason: reason))
            }
        }
        return out
    }
}
