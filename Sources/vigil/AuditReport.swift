import Foundation
import VigilEngine

/// The outputs of `vigil audit`: a JSON document (schema `vigil.audit/1`) and a self-contained
/// HTML page with inline SVG plots (no scripts, no external files).
struct AuditReport {
    let result: FairnessAudit.Result
    let cohort: LabelledCohort
    /// Whether rows were decided by the model's policy (so its fallbacks matter).
    let showFallbacks: Bool
    let modelDescription: String?
    let decisionRule: String
    let thresholds: [Double]
    let labelColumn: String
    /// The counterfactual flip test, when asked (`--counterfactual`).
    var counterfactual: Counterfactual? = nil
    /// Attribution by group, when asked (`--attribution`).
    var attribution: AttributionByGroup? = nil

    /// Trade-off thresholds: 101 points from 0 to the largest risk rounded up to 0.05.
    static func grid(maxRisk: Double) -> [Double] {
        let top = min(1, max(0.05, (maxRisk * 20).rounded(.up) / 20))
        return (0...100).map { top * Double($0) / 100 }
    }

    static func fmt(_ v: MetricValue, _ digits: Int = 4) -> String {
        v.value.map { String(format: "%.\(digits)f", $0) } ?? "undefined"
    }

    static let aifTitles = ["disparate impact", "statistical parity difference", "average odds difference", "equal opportunity difference"]
    static let disparityParts = ["difference_between_groups", "difference_to_overall", "ratio_between_groups", "ratio_to_overall"]

    // MARK: - JSON

    func metricJSON(_ v: MetricValue, _ ci: Interval?) -> JSONOutput {
        guard let x = v.value else { return .object([("value", .null), ("reason", .string(v.reason ?? ""))]) }
        var o: [(String, JSONOutput)] = [("value", .number(x))]
        if let ci {
            o.append(("ci", .array([.number(ci.lower), .number(ci.upper)])))
            if ci.defined < ci.replicates { o.append(("ci_defined_replicates", .int(ci.defined))) }
        }
        return .object(o)
    }

    func groupJSON(_ g: FairnessAudit.Group, view: FairnessAudit.View?) -> JSONOutput {
        var o: [(String, JSONOutput)] = [("group", .string(g.key)), ("n", .int(g.n)), ("positives", .int(Int(g.metrics[.positives]!.value!)))]
        if view != nil { o.append(("eligible", .bool(g.eligible))) }
        o.append(("metrics", .object(Metric.allCases.filter { !$0.isCount }.map { ($0.rawValue, metricJSON(g.metrics[$0]!, g.intervals[$0])) })))
        if let c = g.comparison, let ref = view?.reference {
            var cmp: [(String, JSONOutput)] = [("reference", .string(ref))]
            for (i, v) in c.all.enumerated() { cmp.append((ReferenceComparison.names[i], metricJSON(v, g.comparisonIntervals[i]))) }
            o.append(("vs_reference", .object(cmp)))
        }
        return .object(o)
    }

    func json() -> JSONOutput {
        let o = result.options
        var doc: [(String, JSONOutput)] = [("schema", .string("vigil.audit/1"))]
        doc.append(("model", modelDescription.map { .string($0) } ?? .null))
        doc.append(("input", .object([
            ("file", .string(cohort.url.lastPathComponent)), ("sha256", .string(cohort.sha256)), ("rows", .int(result.rows)),
            ("label", .string(labelColumn)), ("scores", .string(cohort.scoreSource)),
        ])))
        doc.append(("decisions", .object([
            ("rule", .string(decisionRule)),
            ("fallback_rows", .object((showFallbacks ? cohort.fallbacks : [:]).sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
        ])))
        doc.append(("bootstrap", .object([
            ("replicates", .int(o.replicates)), ("seed", .string(String(o.seed))), ("confidence", .number(o.confidence)),
            ("method", .string(o.resampling.summary)),
        ])))
        doc.append(("min_group_size", .int(o.minGroupSize)))
        doc.append(("overall", groupJSON(result.overall, view: nil)))
        doc.append(("views", .array(result.views.map { v in
            var vo: [(String, JSONOutput)] = [("name", .string(v.name)), ("fields", .array(v.fields.map { .string($0) }))]
            vo.append(("reference", v.reference.map { .string($0) } ?? .null))
            vo.append(("groups", .array(v.groups.map { groupJSON($0, view: v) })))
            vo.append(("disparities", .object(Metric.allCases.filter { !$0.isCount }.map { m in
                let d = v.disparities[m]!
                var dj: [(String, JSONOutput)] = [
                    ("group_min", metricJSON(d.groupMin, nil)), ("arg_min", d.argMin.map { .string($0) } ?? .null),
                    ("group_max", metricJSON(d.groupMax, nil)), ("arg_max", d.argMax.map { .string($0) } ?? .null),
                ]
                let parts = [d.differenceBetweenGroups, d.differenceToOverall, d.ratioBetweenGroups, d.ratioToOverall]
                for (i, name) in Self.disparityParts.enumerated() { dj.append((name, metricJSON(parts[i], v.disparityIntervals[m]?[name]))) }
                if !d.excluded.isEmpty { dj.append(("excluded", .object(d.excluded.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
                return (m.rawValue, .object(dj))
            })))
            vo.append(("warnings", .array(v.warnings.map { .string($0) })))
            return .object(vo)
        })))
        if let counterfactual { doc.append(("counterfactual", counterfactual.json)) }
        if let attribution { doc.append(("attribution_by_group", attribution.json)) }
        return .object(doc)
    }

    // MARK: - HTML

    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442", "#7F7F7F", "#8C510A"]

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func cell(_ v: MetricValue, _ ci: Interval?) -> String {
        guard let x = v.value else { return "<td class=\"undef\" title=\"\(Self.esc(v.reason ?? ""))\">undefined</td>" }
        var s = String(format: "%.3f", x)
        if let ci { s += String(format: "<br><span class=\"ci\">[%.3f, %.3f]</span>", ci.lower, ci.upper) }
        return "<td>\(s)</td>"
    }

    /// The groups a view's plots draw: eligible ones, largest first, at most 8.
    func plotted(_ v: FairnessAudit.View) -> [FairnessAudit.Group] {
        Array(v.groups.filter(\.eligible).prefix(8))
    }

    func html() -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Vigil fairness audit</title>
            <style>
            body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1140px; padding: 0 16px; }
            h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 36px; border-bottom: 2px solid #0072B2; padding-bottom: 4px; }
            h3 { font-size: 15px; margin: 22px 0 6px; }
            table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
            th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; white-space: nowrap; }
            th { background: #f3f6f9; white-space: normal; vertical-align: bottom; max-width: 110px; } td:first-child, th:first-child { text-align: left; }
            .ci { color: #777; font-size: 11px; } .undef { color: #b00; font-style: italic; }
            .small td { color: #999; } .meta td { text-align: left; white-space: normal; }
            .warn { background: #fff4e5; border-left: 4px solid #E69F00; padding: 6px 10px; margin: 6px 0; }
            .plots { display: flex; flex-wrap: wrap; gap: 14px; } svg { background: #fff; border: 1px solid #e3e3e3; }
            .note { color: #555; font-size: 12.5px; max-width: 1000px; }
            .scroll { overflow-x: auto; }
            </style></head><body>
            <h1>Fairness audit</h1>

            """
        let o = result.options
        h += "<table class=\"meta\">"
        for (k, v) in [
            ("model", modelDescription ?? "(none: risks from a column)"), ("input", "\(cohort.url.lastPathComponent) (sha256 \(cohort.sha256))"),
            ("rows", "\(result.rows), \(cohort.labels.filter { $0 }.count) with \(labelColumn) = 1"), ("risks", cohort.scoreSource),
            ("decisions", decisionRule),
            ("intervals", "\(Int(o.confidence * 100))% percentile bootstrap, \(o.replicates) replicates, seed \(o.seed), resampled within groups"),
            ("minimum group size", "\(o.minGroupSize) (smaller groups are shown greyed and left out of gaps and ratios)"),
        ] { h += "<tr><th>\(k)</th><td>\(Self.esc(v))</td></tr>" }
        h += "</table>\n"
        for (reason, count) in (showFallbacks ? cohort.fallbacks : [:]).sorted(by: { $0.key < $1.key }) {
            h += "<div class=\"warn\">\(count) rows took the fallback threshold: \(Self.esc(reason))</div>\n"
        }
        let decisionMetrics: [Metric] = [.selectionRate, .tpr, .fpr, .fnr, .tnr, .ppv, .npv, .accuracy, .balancedAccuracy]
        let riskMetrics: [Metric] = [.prevalence, .auroc, .auprc, .brier, .ece, .calibrationSlope, .calibrationIntercept]
        h += "<h2>Overall</h2>"
        for (title, list) in [("Decisions", decisionMetrics), ("Risks", riskMetrics)] {
            h += "<div class=\"scroll\"><table><tr><th>\(title)</th>" + list.map { "<th>\($0.title)</th>" }.joined() + "</tr><tr><td>all rows</td>"
            h += list.map { cell(result.overall.metrics[$0]!, result.overall.intervals[$0]) }.joined() + "</tr></table></div>\n"
        }

        for v in result.views {
            h += "<h2>By \(Self.esc(v.name.replacingOccurrences(of: "|", with: " × ")))</h2>\n"
            for w in v.warnings { h += "<div class=\"warn\">\(Self.esc(w))</div>\n" }
            // Metrics per group.
            for (title, list) in [("Decisions at each row's threshold", decisionMetrics), ("Prevalence, discrimination and calibration of the risks", riskMetrics)] {
                h += "<h3>\(title)</h3><div class=\"scroll\"><table><tr><th>group</th><th>n</th><th>positives</th>"
                h += list.map { "<th>\($0.title)</th>" }.joined() + "</tr>\n"
                for g in v.groups {
                    h += "<tr\(g.eligible ? "" : " class=\"small\"")><td>\(Self.esc(g.key))</td><td>\(g.n)</td><td>\(Int(g.metrics[.positives]!.value!))</td>"
                    h += list.map { cell(g.metrics[$0]!, g.intervals[$0]) }.joined() + "</tr>\n"
                }
                h += "</table></div>\n"
            }
            h += "<p class=\"note\">Hover an <span class=\"undef\">undefined</span> cell for the reason. Brackets: \(Int(o.confidence * 100))% CI.</p>\n"
            // Disparities.
            h += "<h3>Gaps and ratios between groups (Fairlearn)</h3><table><tr><th>metric</th><th>group min</th><th>group max</th><th>difference between groups</th><th>difference to overall</th><th>ratio between groups</th><th>ratio to overall</th></tr>\n"
            for m in [Metric.selectionRate, .tpr, .fpr, .fnr, .ppv, .npv, .accuracy, .balancedAccuracy, .auroc, .auprc, .brier, .ece, .calibrationSlope] {
                let d = v.disparities[m]!
                let iv = v.disparityIntervals[m] ?? [:]
                h += "<tr><td>\(m.title)</td><td>\(Self.fmt(d.groupMin, 3)) \(d.argMin.map { "(\(Self.esc($0)))" } ?? "")</td><td>\(Self.fmt(d.groupMax, 3)) \(d.argMax.map { "(\(Self.esc($0)))" } ?? "")</td>"
                h += cell(d.differenceBetweenGroups, iv["difference_between_groups"]) + cell(d.differenceToOverall, iv["difference_to_overall"])
                h += cell(d.ratioBetweenGroups, iv["ratio_between_groups"]) + cell(d.ratioToOverall, iv["ratio_to_overall"]) + "</tr>\n"
            }
            h += "</table>\n<p class=\"note\">A gap (max &minus; min over groups) only grows when groups scatter, so its resampled values sit above the estimate: read the interval as how large the gap could be on another cohort of this size. When thresholds were fitted on these very rows the interval can lie wholly above the fitted gap.</p>\n"
            if let ref = v.reference {
                h += "<h3>Against the reference group '\(Self.esc(ref))' (AIF360)</h3><table><tr><th>group</th>" + Self.aifTitles.map { "<th>\($0)</th>" }.joined() + "</tr>\n"
                for g in v.groups where g.comparison != nil {
                    h += "<tr\(g.eligible ? "" : " class=\"small\"")><td>\(Self.esc(g.key))</td>"
                    h += g.comparison!.all.enumerated().map { cell($1, g.comparisonIntervals[$0]) }.joined() + "</tr>\n"
                }
                h += "</table>\n"
            }
            // Plots.
            let groups = plotted(v)
            if groups.count < v.groups.filter(\.eligible).count {
                h += "<p class=\"note\">Plots show the \(groups.count) largest eligible groups.</p>"
            }
            h += "<h3>Rates with \(Int(o.confidence * 100))% CIs</h3><div class=\"plots\">"
            h += barChart(groups, metrics: [.tpr, .fpr, .ppv, .selectionRate, .balancedAccuracy, .auroc])
            h += "</div>\n<h3>ROC and calibration</h3><div class=\"plots\">"
            h += rocPlot(groups) + calibrationPlot(groups)
            h += "</div>\n<h3>Threshold trade-off per group</h3><p class=\"note\">TPR (solid), FPR (dashed) and selection rate (dotted) if the group were decided at each threshold; the vertical line is the threshold its rows got.</p><div class=\"plots\">"
            let keys = cohort.groupKeys(v.fields)
            for (i, g) in groups.enumerated() {
                let used = Set(keys.indices.filter { keys[$0] == g.key }.map { thresholds[$0] }).sorted()
                h += tradeoffPlot(g, color: Self.palette[i % Self.palette.count], marks: used)
            }
            h += "</div>\n"
        }
        if let at = attribution {
            h += "<h2>Attribution by group</h2>\n<p class=\"note\">Mean |contribution| per feature and group (\(Self.esc(at.space)); the model's explainer on every row), the ten features with the largest overall mean; in brackets each group's difference from the reference group with its \(at.replicates)-replicate bootstrap 95% interval.</p>\n"
            for v in at.views {
                let total = v.groups.values.reduce(0) { $0 + $1.n }
                let overall = at.features.indices.map { j in v.groups.values.reduce(0.0) { $0 + $1.sumAbs[j] } / Double(max(total, 1)) }
                let top = at.features.indices.sorted { overall[$0] > overall[$1] }.prefix(10)
                let labels = v.groups.keys.sorted()
                h += "<h3>\(Self.esc(v.field)) (reference \(Self.esc(v.reference ?? "none")))</h3>\n<div class=\"scroll\"><table><tr><th>feature</th>" + labels.map { "<th>\(Self.esc($0)) (n \(v.groups[$0]!.n))</th>" }.joined() + "</tr>\n"
                for j in top {
                    h += "<tr><td>\(Self.esc(at.features[j]))</td>"
                    for l in labels {
                        let g = v.groups[l]!
                        var cell = String(format: "%.4f", g.meanAbs(j))
                        if let d = v.differences[l]?[j] { cell += String(format: "<br><span class=\"ci\">%+.4f [%+.4f, %+.4f]</span>", d.value, d.lower, d.upper) }
                        h += "<td>\(cell)</td>"
                    }
                    h += "</tr>\n"
                }
                h += "</table></div>\n"
            }
        }
        if let cf = counterfactual {
            h += "<h2>Counterfactual: \(Self.esc(cf.group)) set to each other value</h2>\n"
            h += "<p class=\"note\">Every row rescored with \(Self.esc(cf.field)) set to another value\(cf.asFeature ? " (a model feature: the risk may change)" : " (not a model feature: the risk cannot change)"). A flip is a decision that changes; <b>model</b>: the new risk against the row's own threshold; <b>threshold</b>: the row's risk against the new group's threshold; <b>both</b>: the rescored decision.</p>\n"
            h += "<table><tr><th>from</th><th>to</th><th>rows</th><th>flips (both)</th><th>model</th><th>threshold</th><th>mean risk change</th><th>mean |risk change|</th><th>max |risk change|</th></tr>\n"
            for from in cf.cells.keys.sorted() {
                for (to, c) in cf.cells[from]!.sorted(by: { $0.key < $1.key }) {
                    let n = Double(max(c.n, 1))
                    h += "<tr><td>\(Self.esc(from))</td><td>\(Self.esc(to))</td><td>\(c.n)</td><td>\(c.flips) (\(String(format: "%.1f%%", 100 * Double(c.flips) / n)))</td><td>\(c.modelFlips)</td><td>\(c.thresholdFlips)</td>"
                    h += "<td>\(String(format: "%+.4f", c.sumDeltaRisk / n))</td><td>\(String(format: "%.4f", c.sumAbsDeltaRisk / n))</td><td>\(String(format: "%.4f", c.maxAbsDeltaRisk))</td></tr>\n"
                }
            }
            h += "</table>\n"
        }
        h += "<p class=\"note\">Generated by vigil audit. Definitions: AUPRC is average precision (scikit-learn); ECE uses 10 equal-width bins; calibration slope and intercept come from a logistic regression of the label on logit(risk). Undefined metrics are never shown as 0.</p>\n</body></html>\n"
        return h
    }

    // MARK: - SVG

    /// A plot frame: `w` x `h` pixels with margins, x and y ranges, grid and tick labels.
    struct Frame {
        let w = 360.0, h = 300.0, left = 48.0, right = 12.0, top = 28.0, bottom = 40.0
        let x0: Double, x1: Double, y0: Double, y1: Double
        func x(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (w - left - right) }
        func y(_ v: Double) -> Double { h - bottom - (v - y0) / (y1 - y0) * (h - top - bottom) }

        func open(title: String, xLabel: String, yLabel: String, width: Double? = nil) -> String {
            var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width ?? w))\" height=\"\(Int(h))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">"
            s += "<text x=\"\(left)\" y=\"16\" font-size=\"13\" font-weight=\"bold\">\(AuditReport.esc(title))</text>"
            for fx in Self.ticks(x0, x1) {
                s += "<line x1=\"\(x(fx))\" y1=\"\(y(y0))\" x2=\"\(x(fx))\" y2=\"\(y(y1))\" stroke=\"#eee\"/>"
                s += "<text x=\"\(x(fx))\" y=\"\(y(y0) + 14)\" text-anchor=\"middle\">\(Self.label(fx))</text>"
            }
            for fy in Self.ticks(y0, y1) {
                s += "<line x1=\"\(x(x0))\" y1=\"\(y(fy))\" x2=\"\(x(x1))\" y2=\"\(y(fy))\" stroke=\"#eee\"/>"
                s += "<text x=\"\(left - 4)\" y=\"\(y(fy) + 4)\" text-anchor=\"end\">\(Self.label(fy))</text>"
            }
            s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w - left - right)\" height=\"\(h - top - bottom)\" fill=\"none\" stroke=\"#999\"/>"
            s += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 6)\" text-anchor=\"middle\">\(AuditReport.esc(xLabel))</text>"
            s += "<text transform=\"translate(12 \((top + h - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">\(AuditReport.esc(yLabel))</text>"
            return s
        }

        /// Round tick values: a step of 1, 2, 2.5 or 5 times a power of ten giving 4 to 10 ticks.
        static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
            let span = hi - lo
            guard span > 0 else { return [lo] }
            let base = pow(10, (log10(span / 5)).rounded(.down))
            let step = [1.0, 2, 2.5, 5, 10].map { $0 * base }.first { span / $0 <= 8 } ?? span / 5
            return (0...Int((span / step + 1e-9).rounded(.down))).map { lo + Double($0) * step }
        }

        static func label(_ v: Double) -> String {
            var s = String(format: "%.3f", v)
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return s
        }

        func polyline(_ pts: [(Double, Double)], color: String, width: Double = 1.8, dash: String? = nil) -> String {
            let p = pts.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            return "<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(width)\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
        }
    }

    func legend(_ groups: [FairnessAudit.Group], frame f: Frame, x: Double, y: Double) -> String {
        var s = ""
        for (i, g) in groups.enumerated() {
            let yy = y + Double(i) * 14
            s += "<rect x=\"\(x)\" y=\"\(yy - 8)\" width=\"10\" height=\"10\" fill=\"\(Self.palette[i % Self.palette.count])\"/>"
            s += "<text x=\"\(x + 14)\" y=\"\(yy + 1)\">\(Self.esc(g.key)) (n=\(g.n))</text>"
        }
        return s
    }

    func rocPlot(_ groups: [FairnessAudit.Group]) -> String {
        let f = Frame(x0: 0, x1: 1, y0: 0, y1: 1)
        var s = f.open(title: "ROC curves", xLabel: "false-positive rate", yLabel: "true-positive rate")
        s += f.polyline([(0, 0), (1, 1)], color: "#bbb", width: 1, dash: "4 3")
        for (i, g) in groups.enumerated() where !g.curves.roc.isEmpty {
            s += f.polyline(g.curves.roc.map { ($0.fpr, $0.tpr) }, color: Self.palette[i % Self.palette.count])
        }
        s += legend(groups, frame: f, x: f.x(0.52), y: f.y(0.32))
        return s + "</svg>"
    }

    func calibrationPlot(_ groups: [FairnessAudit.Group]) -> String {
        // Zoom to the risks present: up to the largest bin edge with data.
        let maxBin = groups.flatMap { g in g.curves.calibration.enumerated().filter { $0.element.n > 0 }.map(\.offset) }.max() ?? 9
        let top = Double(maxBin + 1) / 10
        let observedTop = groups.flatMap { $0.curves.calibration.filter { $0.n > 0 }.map(\.observed) }.max() ?? top
        let yTop = min(1, max(top, (observedTop * 10).rounded(.up) / 10))
        let f = Frame(x0: 0, x1: top, y0: 0, y1: yTop)
        var s = f.open(title: "Calibration (10 equal-width bins)", xLabel: "mean predicted risk", yLabel: "observed rate")
        s += f.polyline([(0, 0), (min(top, yTop), min(top, yTop))], color: "#bbb", width: 1, dash: "4 3")
        for (i, g) in groups.enumerated() {
            let c = Self.palette[i % Self.palette.count]
            let pts = g.curves.calibration.filter { $0.n > 0 }.map { ($0.meanRisk, $0.observed) }
            s += f.polyline(pts, color: c)
            for (b, p) in zip(g.curves.calibration.filter { $0.n > 0 }, pts) {
                let r = max(2, min(6, sqrt(Double(b.n)) / 4))
                s += "<circle cx=\(String(format: "\"%.1f\"", f.x(p.0))) cy=\(String(format: "\"%.1f\"", f.y(p.1))) r=\"\(String(format: "%.1f", r))\" fill=\"\(c)\" fill-opacity=\"0.6\"><title>\(Self.esc(g.key)): \(b.n) rows, mean risk \(String(format: "%.3f", b.meanRisk)), observed \(String(format: "%.3f", b.observed))</title></circle>"
            }
        }
        s += legend(groups, frame: f, x: f.x(0.02 * top) + 4, y: f.y(yTop) + 14)
        s += "<text x=\"\(f.x(top * 0.45))\" y=\"\(f.h - f.bottom - 8)\" fill=\"#666\">dot area ~ rows in the bin</text>"
        return s + "</svg>"
    }

    func barChart(_ groups: [FairnessAudit.Group], metrics: [Metric]) -> String {
        let width = max(720.0, Double(metrics.count * (groups.count * 14 + 30)) + 80)
        let f = Frame(x0: 0, x1: 1, y0: 0, y1: 1)
        let plotW = width - f.left - f.right
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(f.h))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">"
        s += "<text x=\"\(f.left)\" y=\"16\" font-size=\"13\" font-weight=\"bold\">Metrics per group, with \(Int(result.options.confidence * 100))% CI whiskers</text>"
        for k in 0...5 {
            let v = Double(k) / 5
            s += "<line x1=\"\(f.left)\" y1=\"\(f.y(v))\" x2=\"\(width - f.right)\" y2=\"\(f.y(v))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f.left - 4)\" y=\"\(f.y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.1f", v))</text>"
        }
        let slot = plotW / Double(metrics.count)
        let barW = min(16, (slot - 16) / Double(max(groups.count, 1)))
        for (mi, m) in metrics.enumerated() {
            let x0 = f.left + Double(mi) * slot + (slot - barW * Double(groups.count)) / 2
            s += "<text x=\"\(f.left + (Double(mi) + 0.5) * slot)\" y=\"\(f.h - f.bottom + 16)\" text-anchor=\"middle\">\(Self.esc(m.title))</text>"
            for (gi, g) in groups.enumerated() {
                let x = x0 + Double(gi) * barW
                let c = Self.palette[gi % Self.palette.count]
                guard let v = g.metrics[m]!.value else {
                    s += "<text x=\"\(x + barW / 2)\" y=\"\(f.y(0) - 4)\" text-anchor=\"middle\" fill=\"#b00\" font-size=\"9\">n/a<title>\(Self.esc(g.key)): \(Self.esc(g.metrics[m]!.reason ?? ""))</title></text>"
                    continue
                }
                s += "<rect x=\"\(String(format: "%.1f", x + 1))\" y=\"\(String(format: "%.1f", f.y(v)))\" width=\"\(String(format: "%.1f", barW - 2))\" height=\"\(String(format: "%.1f", f.y(0) - f.y(v)))\" fill=\"\(c)\" fill-opacity=\"0.8\"><title>\(Self.esc(g.key)) \(m.title): \(String(format: "%.3f", v))</title></rect>"
                if let ci = g.intervals[m] {
                    let cx = x + barW / 2
                    s += "<line x1=\"\(cx)\" y1=\"\(f.y(ci.lower))\" x2=\"\(cx)\" y2=\"\(f.y(ci.upper))\" stroke=\"#222\"/>"
                    s += "<line x1=\"\(cx - 3)\" y1=\"\(f.y(ci.lower))\" x2=\"\(cx + 3)\" y2=\"\(f.y(ci.lower))\" stroke=\"#222\"/>"
                    s += "<line x1=\"\(cx - 3)\" y1=\"\(f.y(ci.upper))\" x2=\"\(cx + 3)\" y2=\"\(f.y(ci.upper))\" stroke=\"#222\"/>"
                }
            }
        }
        s += "<line x1=\"\(f.left)\" y1=\"\(f.y(0))\" x2=\"\(width - f.right)\" y2=\"\(f.y(0))\" stroke=\"#999\"/>"
        // Legend along the bottom.
        var lx = f.left
        for (gi, g) in groups.enumerated() {
            s += "<rect x=\"\(lx)\" y=\"\(f.h - 14)\" width=\"10\" height=\"10\" fill=\"\(Self.palette[gi % Self.palette.count])\"/>"
            let label = "\(g.key) (n=\(g.n))"
            s += "<text x=\"\(lx + 14)\" y=\"\(f.h - 5)\">\(Self.esc(label))</text>"
            lx += 24 + Double(label.count) * 6
        }
        return s + "</svg>"
    }

    func tradeoffPlot(_ g: FairnessAudit.Group, color: String, marks: [Double]) -> String {
        let t = g.curves.tradeoff
        let f = Frame(x0: 0, x1: t.last?.threshold ?? 1, y0: 0, y1: 1)
        var s = f.open(title: "\(g.key) (n=\(g.n))", xLabel: "threshold", yLabel: "rate", width: nil)
        if t.contains(where: { $0.tpr != nil }) { s += f.polyline(t.compactMap { p in p.tpr.map { (p.threshold, $0) } }, color: color) }
        if t.contains(where: { $0.fpr != nil }) { s += f.polyline(t.compactMap { p in p.fpr.map { (p.threshold, $0) } }, color: color, dash: "6 3") }
        s += f.polyline(t.map { ($0.threshold, $0.selectionRate) }, color: "#888", width: 2, dash: "2 4")
        for m in marks.prefix(3) where m <= f.x1 {
            s += "<line x1=\"\(f.x(m))\" y1=\"\(f.y(0))\" x2=\"\(f.x(m))\" y2=\"\(f.y(1))\" stroke=\"#222\" stroke-width=\"1.2\"/>"
            s += "<text x=\"\(f.x(m) + 3)\" y=\"\(f.y(0.95))\">t=\(String(format: "%.3f", m))</text>"
        }
        if marks.count > 3 { s += "<text x=\"\(f.x(f.x1 * 0.5))\" y=\"\(f.y(0.88))\">\(marks.count) thresholds (randomized)</text>" }
        if t.allSatisfy({ $0.tpr == nil }) { s += "<text x=\"\(f.x(f.x1 * 0.3))\" y=\"\(f.y(0.5))\" fill=\"#b00\">no positives: TPR undefined</text>" }
        let lx = f.x(f.x1 * 0.55), ly = f.y(0.75)
        s += "<line x1=\"\(lx)\" y1=\"\(ly)\" x2=\"\(lx + 18)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"1.8\"/><text x=\"\(lx + 22)\" y=\"\(ly + 4)\">TPR</text>"
        s += "<line x1=\"\(lx)\" y1=\"\(ly + 14)\" x2=\"\(lx + 18)\" y2=\"\(ly + 14)\" stroke=\"\(color)\" stroke-width=\"1.8\" stroke-dasharray=\"6 3\"/><text x=\"\(lx + 22)\" y=\"\(ly + 18)\">FPR</text>"
        s += "<line x1=\"\(lx)\" y1=\"\(ly + 28)\" x2=\"\(lx + 18)\" y2=\"\(ly + 28)\" stroke=\"#888\" stroke-width=\"2\" stroke-dasharray=\"2 4\"/><text x=\"\(lx + 22)\" y=\"\(ly + 32)\">selected</text>"
        return s + "</svg>"
    }
}
