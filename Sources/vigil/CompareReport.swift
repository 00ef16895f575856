import Foundation
import VigilEngine

/// `vigil compare`'s outputs: JSON (schema `vigil.compare/1`) and a self-contained HTML page,
/// both with the findings (groups that got worse) first.
struct CompareReport {
    let baselineModel: VigilModel
    let candidateModel: VigilModel
    let cohort: LabelledCohort
    let candidateCohort: LabelledCohort
    let labelColumn: String
    let plan: ValidationPlan?
    let result: PairedComparison.Result
    let findings: [PairedComparison.Finding]
    let nonInferiority: [PairedComparison.NonInferiorityJudgement]
    let groupMismatch: Int

    static let headlineMetrics: [Metric] = [.auroc, .auprc, .tpr, .fpr, .ppv, .brier, .ece]

    static func f4(_ x: Double) -> String { String(format: "%.4f", x) }
    static func signed(_ x: Double) -> String { String(format: "%+.4f", x) }
    static func ci(_ iv: Interval?) -> String { iv.map { String(format: "[%+.4f, %+.4f]", $0.lower, $0.upper) } ?? "" }

    static func place(_ f: PairedComparison.Finding) -> String { f.view == "overall" ? "overall" : "\(f.view)=\(f.group)" }

    /// One change: `auroc 0.6212 -> 0.5878, -0.0334 [-0.1024, +0.0295], interval includes 0`.
    static func change(_ f: PairedComparison.Finding) -> String {
        var s = "\(f.metric.rawValue) \(f4(f.baseline)) -> \(f4(f.candidate)), \(signed(f.delta)) \(ci(f.interval))"
            + (f.significant ? ", significant" : ", interval includes 0") + (f.source == "default" ? "" : " (margin \(f.source))")
        if f.tier == 3, f.view != "overall", let o = f.overallDelta { s += " (overall \(signed(o)))" }
        return s
    }

    static func describe(_ f: PairedComparison.Finding) -> String {
        "\(place(f)) (n \(f.n), \(f.positives) positive): " + change(f)
    }

    /// The groups that got worse, in the order of their most worrying finding, each with all its findings.
    var worseGroups: [(place: String, n: Int, positives: Int, findings: [PairedComparison.Finding])] {
        var order: [String] = []
        var byPlace: [String: [PairedComparison.Finding]] = [:]
        for f in findings {
            let p = Self.place(f)
            if byPlace[p] == nil { order.append(p) }
            byPlace[p, default: []].append(f)
        }
        return order.map { p in (p, byPlace[p]![0].n, byPlace[p]![0].positives, byPlace[p]!) }
    }

    static func describe(group g: (place: String, n: Int, positives: Int, findings: [PairedComparison.Finding])) -> String {
        "\(g.place) (n \(g.n), \(g.positives) positive): " + g.findings.map(change).joined(separator: "; ")
    }

    /// Overall changes in one line each.
    var headline: [String] {
        let o = result.overall
        var lines = Self.headlineMetrics.compactMap { m -> String? in
            guard let x = o.baseline[m]?.value, let y = o.candidate[m]?.value, let d = o.delta[m]?.value else { return nil }
            return "overall \(m.rawValue): \(Self.f4(x)) -> \(Self.f4(y)), \(Self.signed(d)) \(Self.ci(o.deltaIntervals[m]))"
        }
        let fl = o.flips
        lines.append("decisions flipped: \(fl.total) of \(o.n) (\(fl.up) up, \(fl.down) down); positives newly missed \(fl.newlyMissed), newly caught \(fl.newlyCaught); new false alarms \(fl.newFalseAlarms), removed \(fl.removedFalseAlarms)")
        let worse = Set(findings.map { $0.view == "overall" ? "overall" : "\($0.view)=\($0.group)" })
        lines.append(findings.isEmpty ? "no group got worse by the margin on any finding metric"
                     : "groups that got worse: \(worse.count) (\(findings.filter(\.significant).count) significant findings of \(findings.count))")
        return lines
    }

    // MARK: - Attribution

    /// Mean |attribution| per feature, overall and for every group of the single-field views.
    struct AttributionChange {
        struct Row { let feature: String; let baseline: Double?; let candidate: Double? }
        let space: String
        let overall: [Row]
        let byGroup: [(view: String, group: String, rows: [Row])]
    }

    /// Computed once, at construction: the JSON and the HTML both show it.
    let attribution: AttributionChange?

    init(baselineModel: VigilModel, candidateModel: VigilModel, cohort: LabelledCohort, candidateCohort: LabelledCohort, labelColumn: String,
         plan: ValidationPlan?, result: PairedComparison.Result, findings: [PairedComparison.Finding],
         nonInferiority: [PairedComparison.NonInferiorityJudgement], groupMismatch: Int) {
        self.baselineModel = baselineModel
        self.candidateModel = candidateModel
        self.cohort = cohort
        self.candidateCohort = candidateCohort
        self.labelColumn = labelColumn
        self.plan = plan
        self.result = result
        self.findings = findings
        self.nonInferiority = nonInferiority
        self.groupMismatch = groupMismatch
        attribution = Self.attributionChange(baselineModel: baselineModel, candidateModel: candidateModel, cohort: cohort,
                                             candidateCohort: candidateCohort, result: result)
    }

    static func attributionChange(baselineModel: VigilModel, candidateModel: VigilModel, cohort: LabelledCohort, candidateCohort: LabelledCohort,
                                  result: PairedComparison.Result) -> AttributionChange? {
        guard let aa = cohort.attributions, let ba = candidateCohort.attributions else { return nil }
        let an = cohort.attributionNames, bn = candidateCohort.attributionNames
        let names = an + bn.filter { !an.contains($0) }
        func means(_ rows: [Int]) -> [AttributionChange.Row] {
            func mean(_ values: [Double], _ width: Int, _ k: Int?) -> Double? {
                guard let k, !rows.isEmpty else { return nil }
                var s = 0.0
                for r in rows { s += abs(values[r * width + k]) }
                return s / Double(rows.count)
            }
            return names.map { name in
                .init(feature: name, baseline: mean(aa, an.count, an.firstIndex(of: name)), candidate: mean(ba, bn.count, bn.firstIndex(of: name)))
            }
        }
        var byGroup: [(String, String, [AttributionChange.Row])] = []
        for v in result.views where v.fields.count == 1 {
            let f = cohort.fields.firstIndex(of: v.fields[0])!
            for g in v.groups where g.eligible {
                byGroup.append((v.name, g.key, means((0..<cohort.count).filter { cohort.groupLabels[f][$0] == g.key })))
            }
        }
        let sa = AttributionSpace(baselineModel.ir.objective), sb = AttributionSpace(candidateModel.ir.objective)
        let space = sa == sb ? sa.rawValue : "baseline \(sa.rawValue), candidate \(sb.rawValue) (not comparable)"
        return AttributionChange(space: space, overall: means(Array(0..<cohort.count)), byGroup: byGroup)
    }

    // MARK: - JSON

    static let number = ValidationReport.number
    static let interval = ValidationReport.interval

    func findingJSON(_ f: PairedComparison.Finding) -> JSONOutput {
        .object([
            ("view", .string(f.view)), ("group", .string(f.group)), ("n", .int(f.n)), ("positives", .int(f.positives)),
            ("metric", .string(f.metric.rawValue)), ("baseline", Self.number(f.baseline)), ("candidate", Self.number(f.candidate)),
            ("delta", Self.number(f.delta)), ("delta_ci", Self.interval(f.interval)), ("margin", .number(f.margin)),
            ("margin_source", .string(f.source)), ("significant", .bool(f.significant)), ("tier", .int(f.tier)),
            ("overall_delta", Self.number(f.overallDelta)),
        ])
    }

    func groupJSON(_ g: PairedComparison.Group) -> JSONOutput {
        let fl = g.flips
        var o: [(String, JSONOutput)] = [("group", .string(g.key)), ("n", .int(g.n)), ("positives", .int(g.positives)), ("eligible", .bool(g.eligible))]
        o.append(("flips", .object([
            ("total", .int(fl.total)), ("rate", Self.number(g.n > 0 ? Double(fl.total) / Double(g.n) : nil)), ("up", .int(fl.up)), ("down", .int(fl.down)),
            ("positives_newly_missed", .int(fl.newlyMissed)), ("positives_newly_caught", .int(fl.newlyCaught)),
            ("new_false_alarms", .int(fl.newFalseAlarms)), ("removed_false_alarms", .int(fl.removedFalseAlarms)),
        ])))
        o.append(("risk", .object([
            ("baseline_mean", Self.number(g.meanBaselineRisk)), ("candidate_mean", Self.number(g.meanCandidateRisk)),
            ("shift", Self.number(g.riskShift)), ("shift_ci", Self.interval(g.riskShiftInterval)), ("mean_absolute_shift", Self.number(g.meanAbsoluteRiskShift)),
        ])))
        o.append(("metrics", .object(PairedComparison.metrics.map { m in
            var mo: [(String, JSONOutput)] = [("baseline", Self.number(g.baseline[m]?.value)), ("candidate", Self.number(g.candidate[m]?.value)),
                                              ("delta", Self.number(g.delta[m]?.value)), ("delta_ci", Self.interval(g.deltaIntervals[m]))]
            if let iv = g.deltaIntervals[m], iv.defined < iv.replicates { mo.append(("ci_defined_replicates", .int(iv.defined))) }
            if let r = g.delta[m]?.reason { mo.append(("reason", .string(r))) }
            return (m.rawValue, .object(mo))
        })))
        return .object(o)
    }

    func json() -> JSONOutput {
        let o = result.options
        var doc: [(String, JSONOutput)] = [("schema", .string("vigil.compare/1"))]
        doc.append(("baseline", ValidationReport.modelJSON(baselineModel)))
        doc.append(("candidate", ValidationReport.modelJSON(candidateModel)))
        doc.append(("input", .object([
            ("file", .string(cohort.url.lastPathComponent)), ("sha256", .string(cohort.sha256)), ("rows", .int(result.rows)),
            ("positives", .int(cohort.labels.filter { $0 }.count)), ("label", .string(labelColumn)),
            ("rows_in_other_groups_under_candidate_manifest", .int(groupMismatch)),
        ])))
        doc.append(("bootstrap", .object([
            ("replicates", .int(o.replicates)), ("seed", .string(String(o.seed))), ("confidence", .number(o.confidence)),
            ("paired", .string("each replicate weights the same rows for both versions")), ("method", .string(o.resampling.summary)),
        ])))
        doc.append(("min_group_size", .int(o.minGroupSize)))
        doc.append(("plan", plan.map { .object([("name", .string($0.name)), ("version", .string($0.version)), ("sha256", .string($0.sha256))]) } ?? .null))
        doc.append(("headline", .array(headline.map { .string($0) })))
        doc.append(("worse_groups", .array(worseGroups.map { g in
            .object([("group", .string(g.place)), ("n", .int(g.n)), ("positives", .int(g.positives)),
                     ("summary", .string(Self.describe(group: g))), ("metrics", .array(g.findings.map { .string($0.metric.rawValue) }))])
        })))
        doc.append(("findings", .array(findings.map(findingJSON))))
        doc.append(("non_inferiority", .array(nonInferiority.map { j in
            .object([
                ("id", .string(j.margin.id)), ("metric", .string(j.margin.metric.rawValue)), ("view", .string(j.view)), ("group", .string(j.group)),
                ("margin", .number(j.margin.margin)), ("delta", Self.number(j.delta)), ("delta_ci", Self.interval(j.interval)),
                ("status", .string(j.status.rawValue)), ("reason", .string(j.reason)),
            ])
        })))
        doc.append(("overall", groupJSON(result.overall)))
        doc.append(("views", .array(result.views.map { v in
            .object([("name", .string(v.name)), ("fields", .array(v.fields.map { .string($0) })), ("groups", .array(v.groups.map(groupJSON)))])
        })))
        if let at = attribution {
            func rows(_ r: [AttributionChange.Row]) -> JSONOutput {
                .array(r.map { x in
                    .object([("feature", .string(x.feature)), ("baseline", Self.number(x.baseline)), ("candidate", Self.number(x.candidate)),
                             ("delta", Self.number(x.baseline.flatMap { b in x.candidate.map { $0 - b } }))])
                })
            }
            doc.append(("attribution", .object([
                ("statistic", .string("mean |attribution| per feature (first output, the model's margin space)")), ("space", .string(at.space)),
                ("overall", rows(at.overall)),
                ("groups", .array(at.byGroup.map { .object([("view", .string($0.view)), ("group", .string($0.group)), ("features", rows($0.rows))]) })),
            ])))
        } else {
            doc.append(("attribution", .null))
        }
        return .object(doc)
    }

    // MARK: - HTML

    /// `worse` or `better` when the paired interval excludes 0 on that side, else "".
    static func shade(_ m: Metric, _ iv: Interval?) -> String {
        guard let dir = m.direction, let iv else { return "" }
        let worse = dir > 0 ? iv.upper < 0 : iv.lower > 0
        let better = dir > 0 ? iv.lower > 0 : iv.upper < 0
        return worse ? "worse" : better ? "better" : ""
    }

    func html() -> String {
        let esc = AuditReport.esc
        let a = baselineModel, b = candidateModel
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Vigil comparison: \(esc(a.name)) \(esc(a.version)) vs \(esc(b.name)) \(esc(b.version))</title>
            <style>\(ValidationReport.style)
            .worse { background: #fde7e9; } .better { background: #e6f4ea; }</style></head><body>
            <h1>\(esc(b.name)) \(esc(b.version)) (candidate) against \(esc(a.name)) \(esc(a.version)) (baseline)</h1>
            <p class="meta">Baseline sha256 <code>\(a.sha256)</code>\(a.packageDigest.map { ", package <code>\($0)</code>" } ?? ""); candidate sha256 <code>\(b.sha256)</code>\(b.packageDigest.map { ", package <code>\($0)</code>" } ?? "").<br>
            Cohort \(esc(cohort.url.lastPathComponent)) (sha256 <code>\(cohort.sha256)</code>): \(result.rows) rows, \(cohort.labels.filter { $0 }.count) positive. \
            Differences are candidate − baseline with \(ValidationPlan.percent(result.options.confidence)) paired bootstrap intervals (\(result.options.replicates) replicates, seed \(result.options.seed); \(esc(result.options.resampling.summary))).</p>
            <h2>Which groups got worse</h2>
            """
        if findings.isEmpty {
            h += "<p>No eligible group got worse by the margin on AUROC, AUPRC, FNR, FPR, PPV, NPV or ECE.</p>"
        } else {
            h += "<ol>" + worseGroups.map { "<li>\(esc(Self.describe(group: $0)))</li>" }.joined() + "</ol>"
            h += "<p class=\"meta\">Ordered by the most worrying change: lost discrimination or calibration (AUROC, AUPRC, ECE) first, then more missed positives (FNR), then the rest of the operating point (FPR, PPV, NPV), which a new threshold moves for every group at once (the overall change is shown beside it). Within each, significant changes (the paired interval excludes 0) first.</p>"
            h += "<table><tr><th>group</th><th>n</th><th>positives</th><th>metric</th><th>baseline</th><th>candidate</th><th>difference</th><th>interval</th><th>margin</th><th>significant</th></tr>"
            for f in findings {
                h += "<tr class=\"\(f.significant ? "worse" : "")\"><td>\(esc(f.view == "overall" ? "overall" : "\(f.view)=\(f.group)"))</td><td class=\"num\">\(f.n)</td><td class=\"num\">\(f.positives)</td>"
                h += "<td>\(esc(f.metric.title))</td><td class=\"num\">\(Self.f4(f.baseline))</td><td class=\"num\">\(Self.f4(f.candidate))</td><td class=\"num\">\(Self.signed(f.delta))</td>"
                h += "<td class=\"num\">\(Self.ci(f.interval))</td><td class=\"num\">\(Self.f4(f.margin))\(f.source == "default" ? "" : " (\(esc(f.source)))")</td><td>\(f.significant ? "yes" : "no: interval includes 0")</td></tr>"
            }
            h += "</table>"
        }
        h += "<h2>Overall</h2><ul>" + headline.map { "<li>\(esc($0))</li>" }.joined() + "</ul>"
        if !nonInferiority.isEmpty {
            h += "<h2>Non-inferiority (plan \(esc(plan?.name ?? "")))</h2><table><tr><th>id</th><th>group</th><th>metric</th><th>margin</th><th>difference</th><th>interval</th><th>status</th><th>why</th></tr>"
            for j in nonInferiority {
                h += "<tr><td>\(esc(j.margin.id))</td><td>\(esc(j.view == "overall" ? "overall" : "\(j.view)=\(j.group)"))</td><td>\(esc(j.margin.metric.rawValue))</td><td class=\"num\">\(Self.f4(j.margin.margin))</td>"
                h += "<td class=\"num\">\(j.delta.map(Self.signed) ?? "—")</td><td class=\"num\">\(Self.ci(j.interval))</td><td class=\"\(j.status.rawValue)\">\(j.status.rawValue)</td><td>\(esc(j.reason))</td></tr>"
            }
            h += "</table>"
        }
        h += "<h2>By group</h2>"
        let sections: [(name: String, groups: [PairedComparison.Group])] = [("overall", [result.overall])] + result.views.map { ($0.name, $0.groups) }
        for v in sections {
            h += "<h3>\(esc(v.name))</h3><table><tr><th>group</th><th>n</th><th>pos.</th>"
            h += Self.headlineMetrics.map { "<th>Δ \(esc($0.title))</th>" }.joined()
            h += "<th>flips (up / down)</th><th>positives newly missed</th><th>mean risk shift</th></tr>"
            for g in v.groups {
                h += "<tr><td>\(esc(g.key))\(g.eligible ? "" : " <span class=\"meta\">(small)</span>")</td><td class=\"num\">\(g.n)</td><td class=\"num\">\(g.positives)</td>"
                for m in Self.headlineMetrics {
                    guard let d = g.delta[m]?.value else { h += "<td class=\"num\" title=\"\(esc(g.delta[m]?.reason ?? ""))\">—</td>"; continue }
                    let iv = g.deltaIntervals[m]
                    let cls = Self.shade(m, iv)
                    h += "<td class=\"num \(cls)\">\(Self.signed(d))<br><span class=\"meta\">\(Self.ci(iv))</span></td>"
                }
                h += "<td class=\"num\">\(g.flips.total) (\(g.flips.up) / \(g.flips.down))</td><td class=\"num\">\(g.flips.newlyMissed)</td>"
                h += "<td class=\"num\">\(Self.signed(g.riskShift))<br><span class=\"meta\">\(Self.ci(g.riskShiftInterval))</span></td></tr>"
            }
            h += "</table>"
        }
        if let at = attribution {
            h += "<h2>Attribution change</h2><p class=\"meta\">Mean |attribution| per feature over all rows (\(esc(at.space))), the 20 largest changes.</p>"
            h += "<table><tr><th>feature</th><th>baseline</th><th>candidate</th><th>difference</th></tr>"
            let top = at.overall.sorted { abs(($0.candidate ?? 0) - ($0.baseline ?? 0)) > abs(($1.candidate ?? 0) - ($1.baseline ?? 0)) }.prefix(20)
            for r in top {
                let d = r.baseline.flatMap { x in r.candidate.map { $0 - x } }
                h += "<tr><td>\(esc(r.feature))</td><td class=\"num\">\(ValidationReport.cell(r.baseline))</td><td class=\"num\">\(ValidationReport.cell(r.candidate))</td><td class=\"num\">\(d.map(Self.signed) ?? "—")</td></tr>"
            }
            h += "</table>"
        }
        return h + "</body></html>\n"
    }
}
