import Foundation
import VigilEngine

/// `vigil validate`'s outputs: JSON (schema `vigil.validation/1`) and a self-contained HTML page.
struct ValidationReport {
    let plan: ValidationPlan
    let planFile: String
    let model: VigilModel
    let cohort: LabelledCohort
    let labelColumn: String
    let result: FairnessAudit.Result
    let judgements: [ValidationPlan.Judgement]

    var counts: (pass: Int, fail: Int, notEvaluable: Int, skipped: Int) {
        (judgements.filter { $0.status == .pass }.count, judgements.filter { $0.status == .fail }.count,
         judgements.filter { $0.status == .notEvaluable }.count, judgements.filter { $0.status == .skipped }.count)
    }

    /// Every judged line passed (skipped lines aside).
    var accepted: Bool { judgements.allSatisfy { $0.status == .pass || $0.status == .skipped } }

    var verdict: String {
        accepted ? "ACCEPTED: every criterion of the plan is met" : "NOT ACCEPTED: \(Set(judgements.filter { $0.status == .fail || $0.status == .notEvaluable }.map(\.criterion.id)).count) of \(plan.criteria.count) criteria are not met"
    }

    static func number(_ v: Double?) -> JSONOutput {
        guard let v, v.isFinite else { return .null }
        return .number(v)
    }

    static func interval(_ iv: Interval?) -> JSONOutput {
        guard let iv, iv.lower.isFinite, iv.upper.isFinite else { return .null }
        return .array([.number(iv.lower), .number(iv.upper)])
    }

    static func modelJSON(_ m: VigilModel) -> JSONOutput {
        .object([
            ("name", .string(m.name)), ("version", .string(m.version)), ("format", .string(m.format.displayName)),
            ("sha256", .string(m.sha256)), ("policy_version", .string(m.policy.version)),
            ("policy_sha256", m.policy.sha256.isEmpty ? .null : .string(m.policy.sha256)),
            ("package_digest", m.packageDigest.map { .string($0) } ?? .null),
        ])
    }

    static func ruleJSON(_ r: ValidationPlan.Rule) -> JSONOutput {
        switch r {
        case .min(let v): return .object([("min", .number(v))])
        case .max(let v): return .object([("max", .number(v))])
        case .range(let a, let b): return .object([("range", .array([.number(a), .number(b)]))])
        case .maxGap(let v): return .object([("max_gap", .number(v))])
        case .minRatio(let v): return .object([("min_ratio", .number(v))])
        case .minSize(let rows, let pos): return .object([("min_rows", .int(rows)), ("min_positives", .int(pos))])
        }
    }

    func json() -> JSONOutput {
        let c = counts
        var doc: [(String, JSONOutput)] = [("schema", .string("vigil.validation/1"))]
        doc.append(("verdict", .string(accepted ? "accepted" : "not_accepted")))
        doc.append(("summary", .object([("pass", .int(c.pass)), ("fail", .int(c.fail)), ("not_evaluable", .int(c.notEvaluable)), ("skipped", .int(c.skipped))])))
        doc.append(("plan", .object([
            ("name", .string(plan.name)), ("version", .string(plan.version)), ("file", .string(URL(fileURLWithPath: planFile).lastPathComponent)),
            ("sha256", .string(plan.sha256)),
        ])))
        doc.append(("model", Self.modelJSON(model)))
        doc.append(("input", .object([
            ("file", .string(cohort.url.lastPathComponent)), ("sha256", .string(cohort.sha256)), ("rows", .int(result.rows)),
            ("positives", .int(cohort.labels.filter { $0 }.count)), ("label", .string(labelColumn)),
        ])))
        var boot: [(String, JSONOutput)] = [
            ("replicates", .int(plan.replicates)), ("seed", .string(String(plan.seed))), ("confidence", .number(plan.confidence)),
            ("method", .string(result.options.resampling.summary)),
        ]
        if case .clusters(let cl) = result.options.resampling {
            boot.append(("cluster", .object([("column", .string(cl.column)), ("clusters", .int(cl.count)), ("largest", .int(cl.largest))])))
        }
        doc.append(("bootstrap", .object(boot)))
        doc.append(("min_group_size", .int(plan.minGroupSize)))
        doc.append(("results", .array(judgements.map { j in
            var o: [(String, JSONOutput)] = [("id", .string(j.criterion.id)), ("status", .string(j.status.rawValue))]
            o.append(("metric", j.criterion.metric.map { .string($0.rawValue) } ?? .null))
            o.append(("scope", .string(j.criterion.scope.description)))
            o.append(("view", j.criterion.scope.viewName.map { .string($0) } ?? .string("overall")))
            o.append(("group", j.group.map { .string($0) } ?? .null))
            if let n = j.n { o.append(("n", .int(n))) }
            if let p = j.positives { o.append(("positives", .int(p))) }
            o.append(("criterion", Self.ruleJSON(j.criterion.rule)))
            o.append(("rule", .string(j.rule)))
            o.append(("estimate", Self.number(j.estimate)))
            o.append(("ci", Self.interval(j.interval)))
            if let iv = j.interval, iv.defined < iv.replicates { o.append(("ci_defined_replicates", .int(iv.defined))) }
            o.append(("judged", Self.number(j.judged)))
            o.append(("reason", .string(j.reason)))
            if let note = j.criterion.note { o.append(("note", .string(note))) }
            return .object(o)
        })))
        return .object(doc)
    }

    // MARK: - HTML

    static let style = """
        body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1140px; padding: 0 16px; }
        h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 2px solid #0072B2; padding-bottom: 4px; }
        table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; } th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
        th { background: #f2f4f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        .pass { color: #0a6b2d; font-weight: 600; } .fail { color: #b00020; font-weight: 700; } .not_evaluable { color: #8a5a00; font-weight: 700; } .skipped { color: #666; }
        .verdict { font-size: 18px; padding: 10px 14px; border-radius: 4px; margin: 14px 0; } .verdict.ok { background: #e6f4ea; } .verdict.bad { background: #fde7e9; }
        .meta { color: #555; } code { font-size: 12px; }
        """

    static func cell(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "—" }

    func html() -> String {
        let esc = AuditReport.esc
        let c = counts
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Vigil validation: \(esc(model.name)) \(esc(model.version))</title>
            <style>\(Self.style)</style></head><body>
            <h1>Validation of \(esc(model.name)) \(esc(model.version)) against plan “\(esc(plan.name))” \(esc(plan.version))</h1>
            <p class="meta">Model sha256 <code>\(model.sha256)</code>\(model.packageDigest.map { ", package digest <code>\($0)</code>" } ?? ""); \
            policy \(esc(model.policy.version))\(model.policy.sha256.isEmpty ? "" : " sha256 <code>\(model.policy.sha256)</code>").<br>
            Plan sha256 <code>\(plan.sha256)</code>. Cohort \(esc(cohort.url.lastPathComponent)) (sha256 <code>\(cohort.sha256)</code>): \
            \(result.rows) rows, \(cohort.labels.filter { $0 }.count) positive (\(esc(labelColumn))).<br>
            Bootstrap: \(plan.replicates) replicates, seed \(plan.seed), \(ValidationPlan.percent(plan.confidence)) intervals; \(esc(result.options.resampling.summary)).</p>
            <div class="verdict \(accepted ? "ok" : "bad")">\(esc(verdict)). \(c.pass) passed, \(c.fail) failed, \(c.notEvaluable) not evaluable, \(c.skipped) skipped.</div>
            """
        let notMet = judgements.filter { $0.status == .fail || $0.status == .notEvaluable }
        if !notMet.isEmpty {
            h += "<h2>Not met</h2>" + table(notMet)
        }
        h += "<h2>Every criterion</h2>"
        for crit in plan.criteria {
            let lines = judgements.filter { $0.criterion.id == crit.id }
            let status = lines.contains { $0.status == .fail } ? "fail" : lines.contains { $0.status == .notEvaluable } ? "not_evaluable" : "pass"
            h += "<h3><span class=\"\(status)\">\(status.replacingOccurrences(of: "_", with: " ").uppercased())</span> \(esc(crit.id)): \(esc(crit.scope.description))</h3>"
            if let note = crit.note { h += "<p class=\"meta\">\(esc(note))</p>" }
            h += table(lines)
        }
        h += "</body></html>\n"
        return h
    }

    func table(_ lines: [ValidationPlan.Judgement]) -> String {
        let esc = AuditReport.esc
        var t = "<table><tr><th>criterion</th><th>group</th><th>n</th><th>positives</th><th>rule</th><th>estimate</th><th>interval</th><th>status</th><th>why</th></tr>"
        for j in lines {
            let iv = j.interval.map { String(format: "[%.4f, %.4f]", $0.lower, $0.upper) } ?? "—"
            t += "<tr><td>\(esc(j.criterion.id))</td><td>\(esc(j.group ?? j.criterion.scope.description))</td><td class=\"num\">\(j.n.map(String.init) ?? "")</td>"
            t += "<td class=\"num\">\(j.positives.map(String.init) ?? "")</td><td>\(esc(j.rule))</td><td class=\"num\">\(Self.cell(j.estimate))</td>"
            t += "<td class=\"num\">\(iv)</td><td class=\"\(j.status.rawValue)\">\(j.status.rawValue.replacingOccurrences(of: "_", with: " "))</td><td>\(esc(j.reason))</td></tr>"
        }
        return t + "</table>"
    }
}
