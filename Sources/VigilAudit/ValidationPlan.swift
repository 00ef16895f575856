internal import Foundation
package import VigilStatistics
import VigilCore

/// A pre-specified validation plan (docs/FORMATS.md, "Validation plan", schema
/// `vigil.validation_plan/1`): the acceptance criteria a model version must meet on a labelled
/// cohort before it may be used, each judged on a bound of its bootstrap confidence interval,
/// not on the point estimate. `vigil validate` applies it; `vigil compare` takes its
/// non-inferiority margins.
package struct ValidationPlan: Sendable {
    package static let schema = "vigil.validation_plan/1"

    package let name: String
    package let version: String
    /// SHA-256 of the plan file's bytes (reports name exactly the plan applied).
    package let sha256: String
    /// The manifest group fields whose groups and intersections the criteria address.
    package let groupFields: [String]
    package let confidence: Double
    package let replicates: Int
    package let seed: UInt64
    /// The column whose value identifies a patient (or stay) when rows repeat one; the bootstrap
    /// then resamples clusters, not rows.
    package let cluster: String?
    /// Groups with fewer rows are left out of gap and ratio criteria (as in `vigil audit`), and a
    /// floor on such a group is not evaluable unless its criterion says `"small_groups": "skip"`.
    package let minGroupSize: Int
    package let criteria: [Criterion]
    package let nonInferiority: [NonInferiority]
    /// PCCP change types the plan allows (`vigil change-control`), by id.
    package let allowedChanges: [String]

    package init(name: String, version: String, sha256: String, groupFields: [String], confidence: Double, replicates: Int, seed: UInt64,
                 cluster: String?, minGroupSize: Int, criteria: [Criterion], nonInferiority: [NonInferiority], allowedChanges: [String]) {
        self.name = name
        self.version = version
        self.sha256 = sha256
        self.groupFields = groupFields
        self.confidence = confidence
        self.replicates = replicates
        self.seed = seed
        self.cluster = cluster
        self.minGroupSize = minGroupSize
        self.criteria = criteria
        self.nonInferiority = nonInferiority
        self.allowedChanges = allowedChanges
    }

    /// Where a criterion applies: the whole cohort, every group of a view, or one group.
    package enum Scope: Sendable, Equatable {
        case overall
        case view(String)
        case group(view: String, key: String)

        package var viewName: String? {
            switch self {
            case .overall: return nil
            case .view(let v), .group(let v, _): return v
            }
        }

        package var description: String {
            switch self {
            case .overall: return "overall"
            case .view(let v): return "each group of \(v)"
            case .group(let v, let k): return "\(v)=\(k)"
            }
        }
    }

    package enum Rule: Sendable, Equatable {
        /// The lower bound is at least this.
        case min(Double)
        /// The upper bound is at most this.
        case max(Double)
        /// The whole interval lies in [lo, hi].
        case range(Double, Double)
        /// The upper bound of the largest difference between eligible groups (max - min) is at most this.
        case maxGap(Double)
        /// The lower bound of the smallest ratio between eligible groups (min / max) is at least this.
        case minRatio(Double)
        /// Every group has at least this many rows and positive labels (no interval).
        case minSize(rows: Int, positives: Int)

        package var isBetweenGroups: Bool {
            switch self {
            case .maxGap, .minRatio: return true
            default: return false
            }
        }
    }

    package struct Criterion: Sendable, Equatable {
        package let id: String
        /// nil for `minSize`.
        package let metric: Metric?
        package let scope: Scope
        package let rule: Rule
        /// Whether a floor on a group below `minGroupSize` is skipped (true) or not evaluable (false).
        package let skipSmallGroups: Bool
        package let note: String?

        package init(id: String, metric: Metric?, scope: Scope, rule: Rule, skipSmallGroups: Bool, note: String?) {
            self.id = id
            self.metric = metric
            self.scope = scope
            self.rule = rule
            self.skipSmallGroups = skipSmallGroups
            self.note = note
        }
    }

    /// `vigil compare`: candidate - baseline must not be worse than `margin` on the bound of the
    /// paired interval (for a metric where higher is better, lower bound >= -margin; where lower
    /// is better, upper bound <= margin).
    package struct NonInferiority: Sendable, Equatable {
        package let id: String
        package let metric: Metric
        package let scope: Scope
        package let margin: Double
        /// Whether a group below the minimum size is skipped (true) or not evaluable (false).
        package let skipSmallGroups: Bool

        package init(id: String, metric: Metric, scope: Scope, margin: Double, skipSmallGroups: Bool = false) {
            self.id = id
            self.metric = metric
            self.scope = scope
            self.margin = margin
            self.skipSmallGroups = skipSmallGroups
        }
    }

    /// Metric names a plan may use: the audit's JSON names and the clinical synonyms.
    package static func metric(named name: String) -> Metric? {
        switch name {
        case "sensitivity", "recall": return .tpr
        case "specificity": return .tnr
        case "precision": return .ppv
        default:
            guard let m = Metric(rawValue: name), !m.isCount else { return nil }
            return m
        }
    }
}

extension Metric {
    /// +1 when higher is better (AUROC, TPR), -1 when lower is better (FNR, Brier), nil when
    /// neither is (prevalence, selection rate, calibration slope: closer to 1 is better).
    package var direction: Int? {
        switch self {
        case .tpr, .tnr, .ppv, .npv, .accuracy, .balancedAccuracy, .auroc, .auprc: return 1
        case .fpr, .fnr, .brier, .ece: return -1
        case .n, .positives, .prevalence, .selectionRate, .calibrationSlope, .calibrationIntercept: return nil
        }
    }
}

// MARK: - Judging a plan

extension ValidationPlan {
    package enum Status: String, Sendable {
        case pass, fail
        /// The statistic could not be estimated (undefined, no interval, group too small): a
        /// plan's criterion that cannot be judged is not met.
        case notEvaluable = "not_evaluable"
        /// A floor on a group below the plan's minimum size, with `"small_groups": "skip"`.
        case skipped
    }

    /// One judged line: a criterion on one group (a view criterion gives one line per group).
    package struct Judgement: Sendable {
        package let criterion: Criterion
        /// The group key (nil: overall or a between-groups criterion).
        package let group: String?
        package let n: Int?
        package let positives: Int?
        package let estimate: Double?
        package let interval: Interval?
        /// The value judged (a bound, or a count) and the rule in words.
        package let judged: Double?
        package let rule: String
        package let status: Status
        package let reason: String
    }

    /// Judges every criterion on an audit run with this plan's group fields, confidence and
    /// minimum group size.
    package func judge(_ audit: FairnessAudit.Result) throws -> [Judgement] {
        var out: [Judgement] = []
        let pct = Self.percent(confidence)
        for c in criteria {
            let groups: [(FairnessAudit.Group, FairnessAudit.View?)]
            var view: FairnessAudit.View?
            switch c.scope {
            case .overall:
                groups = [(audit.overall, nil)]
            case .view(let name):
                view = try Self.find(name, in: audit)
                groups = view!.groups.map { ($0, view) }
            case .group(let name, let key):
                view = try Self.find(name, in: audit)
                guard let g = view!.groups.first(where: { $0.key == key }) else {
                    out.append(Judgement(criterion: c, group: key, n: 0, positives: 0, estimate: nil, interval: nil, judged: nil,
                                         rule: Self.ruleText(c, pct: pct), status: .notEvaluable,
                                         reason: "the cohort has no row in group \(name)=\(key) (groups: \(view!.groups.map(\.key).joined(separator: ", ")))"))
                    continue
                }
                groups = [(g, view)]
            }
            if c.rule.isBetweenGroups, let m = c.metric, let view {
                out.append(judgeBetween(c, metric: m, view: view, pct: pct))
                continue
            }
            for (g, v) in groups {
                out.append(judgeGroup(c, group: g, inView: v != nil, pct: pct))
            }
        }
        return out
    }

    static func find(_ name: String, in audit: FairnessAudit.Result) throws -> FairnessAudit.View {
        guard let v = audit.views.first(where: { $0.name == name }) else {
            throw VigilError(.usage, "validation plan: no view '\(name)' (views: \(audit.views.map(\.name).joined(separator: ", ")))")
        }
        return v
    }

    package static func percent(_ confidence: Double) -> String {
        let p = confidence * 100
        return p == p.rounded() ? String(Int(p)) + "%" : String(format: "%.1f%%", p)
    }

    static func num(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
        var s = String(format: "%.6f", x)
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    static func ruleText(_ c: Criterion, pct: String) -> String {
        let m = c.metric?.rawValue ?? "size"
        switch c.rule {
        case .min(let v): return "lower \(pct) bound of \(m) >= \(num(v))"
        case .max(let v): return "upper \(pct) bound of \(m) <= \(num(v))"
        case .range(let a, let b): return "\(pct) interval of \(m) within [\(num(a)), \(num(b))]"
        case .maxGap(let v): return "upper \(pct) bound of the largest \(m) difference between groups <= \(num(v))"
        case .minRatio(let v): return "lower \(pct) bound of the smallest \(m) ratio between groups >= \(num(v))"
        case .minSize(let r, let p): return "at least \(r) rows and \(p) positive labels"
        }
    }

    private func judgeGroup(_ c: Criterion, group g: FairnessAudit.Group, inView: Bool, pct: String) -> Judgement {
        let rule = Self.ruleText(c, pct: pct)
        let n = g.n
        let positives = Int(g.metrics[.positives]?.value ?? 0)
        let key: String? = inView ? g.key : nil
        func make(_ estimate: Double?, _ iv: Interval?, _ judged: Double?, _ status: Status, _ reason: String) -> Judgement {
            Judgement(criterion: c, group: key, n: n, positives: positives, estimate: estimate, interval: iv, judged: judged, rule: rule, status: status, reason: reason)
        }
        if case .minSize(let rows, let pos) = c.rule {
            let ok = n >= rows && positives >= pos
            return make(nil, nil, Double(n), ok ? .pass : .fail,
                        "\(n) rows, \(positives) positive labels" + (ok ? "" : n < rows ? ": fewer rows than \(rows)" : ": fewer positives than \(pos)"))
        }
        guard let m = c.metric else { return make(nil, nil, nil, .notEvaluable, "no metric") }
        if inView, n < minGroupSize {
            return make(g.metrics[m]?.value, g.intervals[m], nil, c.skipSmallGroups ? .skipped : .notEvaluable,
                        "\(n) rows, below the plan's min_group_size \(minGroupSize)" + (c.skipSmallGroups ? " (skipped: \"small_groups\": \"skip\")" : ": too few to judge"))
        }
        guard let estimate = g.metrics[m]?.value else {
            return make(nil, nil, nil, .notEvaluable, "\(m.rawValue) is undefined: \(g.metrics[m]?.reason ?? "")")
        }
        guard let iv = g.intervals[m] else {
            return make(estimate, nil, nil, .notEvaluable, "no confidence interval (the plan's bootstrap gave none)")
        }
        return Self.judgeInterval(rule: c.rule, estimate: estimate, iv: iv, make: make)
    }

    private static func judgeInterval(rule: Rule, estimate: Double, iv: Interval, make: (Double?, Interval?, Double?, Status, String) -> Judgement) -> Judgement {
        let defined = iv.defined < iv.replicates ? " (\(iv.defined) of \(iv.replicates) replicates defined)" : ""
        switch rule {
        case .min(let v), .minRatio(let v):
            return make(estimate, iv, iv.lower, iv.lower >= v ? .pass : .fail,
                        "lower bound \(num4(iv.lower)) \(iv.lower >= v ? ">=" : "<") \(num(v))" + defined + (iv.lower < v && estimate >= v ? "; the point estimate \(num4(estimate)) meets it, the evidence does not" : ""))
        case .max(let v), .maxGap(let v):
            return make(estimate, iv, iv.upper, iv.upper <= v ? .pass : .fail,
                        "upper bound \(num4(iv.upper)) \(iv.upper <= v ? "<=" : ">") \(num(v))" + defined + (iv.upper > v && estimate <= v ? "; the point estimate \(num4(estimate)) meets it, the evidence does not" : ""))
        case .range(let a, let b):
            let ok = iv.lower >= a && iv.upper <= b
            return make(estimate, iv, nil, ok ? .pass : .fail,
                        "interval [\(num4(iv.lower)), \(num4(iv.upper))] " + (ok ? "within" : "not within") + " [\(num(a)), \(num(b))]" + defined)
        case .minSize:
            return make(estimate, iv, nil, .notEvaluable, "a size criterion has no interval")
        }
    }

    static func num4(_ x: Double) -> String { String(format: "%.4f", x) }

    private func judgeBetween(_ c: Criterion, metric m: Metric, view: FairnessAudit.View, pct: String) -> Judgement {
        let rule = Self.ruleText(c, pct: pct)
        let d = view.disparities[m]!
        let part: MetricValue, name: String
        if case .maxGap = c.rule { (part, name) = (d.differenceBetweenGroups, "difference_between_groups") } else { (part, name) = (d.ratioBetweenGroups, "ratio_between_groups") }
        func make(_ estimate: Double?, _ iv: Interval?, _ judged: Double?, _ status: Status, _ reason: String) -> Judgement {
            Judgement(criterion: c, group: nil, n: nil, positives: nil, estimate: estimate, interval: iv, judged: judged, rule: rule, status: status, reason: reason)
        }
        guard let estimate = part.value else {
            return make(nil, nil, nil, .notEvaluable, "\(name) of \(m.rawValue) is undefined: \(part.reason ?? "")")
        }
        guard let iv = view.disparityIntervals[m]?[name] else {
            return make(estimate, nil, nil, .notEvaluable, "no confidence interval (the plan's bootstrap gave none)")
        }
        let between = " (between \(d.argMax ?? "-") and \(d.argMin ?? "-")" + (d.excluded.isEmpty ? ")" : "; left out: \(d.excluded.keys.sorted().joined(separator: ", ")))")
        let j = Self.judgeInterval(rule: c.rule, estimate: estimate, iv: iv, make: make)
        return Judgement(criterion: c, group: nil, n: nil, positives: nil, estimate: j.estimate, interval: j.interval, judged: j.judged, rule: rule, status: j.status, reason: j.reason + between)
    }
}

/// The kinds of change between two versions of a model that a Predetermined Change Control Plan
/// (PCCP) may allow, as a plan's `allowed_changes` lists them. (Classifying a candidate against
/// its baseline, and flagging a change type the plan does not list, is `vigil change-control`'s
/// job: not built yet, issue 18.)
package enum ChangeKind: String, Sendable, CaseIterable {
    /// Only the policy (thresholds) changed; the model file is byte-identical.
    case thresholdUpdate = "threshold_update"
    /// Retrained: same features in the same order, same format and model family, same group
    /// definitions; parameters differ.
    case retrain
    /// Same features and format, but the model's shape changed (tree count or depth, layers).
    case hyperparameters
    /// Another model family or file format (logistic regression -> gradient-boosted trees).
    case architecture
    /// Features added, removed, renamed or reordered.
    case newFeatures = "new_features"
    /// Group definitions (the fields, maps or bins the guardrails use) changed.
    case groupDefinitions = "group_definitions"
}
