import ArgumentParser
import Foundation
import VigilEngine

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fairness audit of a labelled cohort: per-group metrics with bootstrap CIs; JSON and an HTML report.",
        discussion: """
            Each row is decided with the threshold the model's policy gives it (its group's, or \
            the fallback), or with --threshold for everyone. Groups: every --group field and \
            every intersection of them ('race|sex'). Per group and overall: n, prevalence, \
            selection rate, TPR, FPR, FNR, TNR, PPV, NPV, accuracy, balanced accuracy, AUROC, \
            AUPRC (average precision), Brier, ECE (10 equal-width bins), calibration slope and \
            intercept. Per metric, Fairlearn's difference and ratio (between groups and to \
            overall), group min and max; per group, AIF360's disparate impact, statistical \
            parity, average odds and equal opportunity differences against a reference group \
            (--reference VIEW=GROUP; default the view's largest group). 95% percentile bootstrap \
            CIs, stratified by group (--bootstrap N, --seed), or by whole patients (--cluster COL). A metric that a group cannot \
            define (TPR without positives) is null with the reason. Groups below \
            --min-group-size are reported with a warning and left out of the disparity summaries.
            """)

    @Option(name: .long, help: "Model package folder (scores rows, maps groups, gives thresholds).")
    var model: String?

    @Option(name: .long, help: "A policy.json to apply instead of the package's own (or to a bare model file); refused when it names another model's SHA-256.")
    var policy: String?

    @Option(name: .long, help: "Labelled cohort: CSV with a header, or JSON Lines.")
    var input: String?

    @Option(name: .long, help: "Column holding the 0/1 outcome.")
    var label: String?

    @Option(name: .long, help: "Group field (repeatable).")
    var group: [String] = []

    @Option(name: .long, help: "One threshold for every row instead of the policy's.")
    var threshold: Double?

    @Option(name: .long, help: "Column holding risks in [0, 1] (instead of the model's scores).")
    var scoresColumn: String?

    @Option(name: .long, help: "Bootstrap replicates for the confidence intervals (0: none).")
    var bootstrap: Int = 1000

    @Option(name: .long, help: "Seed of the bootstrap.")
    var seed: UInt64 = 20240601

    @Option(name: .long, help: "Column identifying each row's patient (or stay) when rows repeat one: the bootstrap resamples patients, not rows.")
    var cluster: String?

    @Option(name: .long, help: "Groups with fewer rows are flagged and left out of disparity summaries.")
    var minGroupSize: Int = 30

    @Option(name: .long, help: "Reference group of a view for AIF360's measures, as VIEW=GROUP (repeatable).")
    var reference: [String] = []

    @Option(name: .long, help: "Write the audit as JSON here.")
    var json: String?

    @Option(name: .long, help: "Write the HTML report here.")
    var html: String?

    @Option(name: .long, help: "Input format: csv or jsonl (default: from the file name).")
    var inputFormat: CohortFormat?

    @Option(name: .long, help: "Longest CSV field, in bytes (default 1 MiB); a longer one is refused naming its line.")
    var maxFieldBytes = CohortReader.Limits().maxFieldBytes

    @Option(name: .long, help: "Longest CSV record or JSON Lines line, in bytes (default 4 MiB); an unclosed quote fails at this size, naming the line it opened on.")
    var maxRecordBytes = CohortReader.Limits().maxRecordBytes

    @Option(name: .long, help: "Write this site's summary for a federated audit (counts and binned scores per group, small cells suppressed; no row, no id).")
    var exportSummary: String?

    @Option(name: .long, help: "The site's name in --export-summary.")
    var site: String?

    @Option(name: .long, help: "Smallest number a site summary may report (cells and histogram bins below it are merged).")
    var minCell = 11

    @Option(name: .long, parsing: .upToNextOption, help: "Merge site summaries (vigil audit --export-summary, vigil monitor export) instead of auditing a cohort: per-site and pooled metrics.")
    var merge: [String] = []

    @Flag(name: .long, help: "No summary on standard error.")
    var quiet = false

    @Flag(name: .long, help: "Attribution by group: each group's mean contribution and mean |contribution| per feature (the model's explainer), and differences in mean |contribution| from the reference group with bootstrap intervals (at most 200 replicates; needs --model).")
    var attribution = false

    @Option(name: .long, help: "Counterfactual flip test: rescore every row with this group's attribute (a group name or its field) set to each other value; flips per group, for the model and the threshold apart (needs --model).")
    var counterfactual: String?

    func run() throws {
        try runReportingErrors {
            let log = StandardError(quiet: quiet)
            if !merge.isEmpty {
                guard input == nil, model == nil, exportSummary == nil else {
                    throw VigilError(.usage, "--merge reads site summaries only; leave out --input, --model and --export-summary")
                }
                try FederatedReport.run(files: merge, json: json, log: log)
                return
            }
            guard let input, let label else { throw VigilError(.usage, "give --input COHORT and --label COLUMN (or --merge SITE.json ...)") }
            guard json != nil || html != nil || exportSummary != nil else { throw VigilError(.usage, "give --json FILE, --html FILE and/or --export-summary FILE") }
            guard minCell >= 1 else { throw VigilError(.usage, "--min-cell \(minCell) must be at least 1") }
            guard !group.isEmpty else { throw VigilError(.usage, "give at least one --group") }
            guard minGroupSize >= 0 else { throw VigilError(.usage, "--min-group-size \(minGroupSize) must be >= 0") }
            if let t = threshold, !(t.isFinite && t >= 0 && t <= 1) {
                throw VigilError(.usage, "--threshold \(t) must be in [0, 1]")
            }
            var options = FairnessAudit.Options()
            options.replicates = bootstrap
            options.seed = seed
            options.minGroupSize = minGroupSize
            for r in reference {
                let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw VigilError(.usage, "--reference \(r): expected VIEW=GROUP, e.g. race=White") }
                options.references[parts[0]] = parts[1]
            }
            if policy != nil, model == nil { throw VigilError(.usage, "--policy needs --model (the policy is checked against the model it was fitted for)") }
            let m = try model.map { try VigilModel.load(path: $0, policy: policy.map { VigilModel.PolicySource.file($0) } ?? .packageFile) }
            for w in m?.loadWarnings ?? [] { log.line("warning: \(w)") }
            let url = URL(fileURLWithPath: input)
            let cohort = try LabelledCohort.load(url: url, model: m, labelColumn: label, scoresColumn: scoresColumn, groupFields: group, clusterColumn: cluster, format: inputFormat,
                                                limits: .init(maxFieldBytes: maxFieldBytes, maxRecordBytes: maxRecordBytes))
            for note in cohort.notes { log.line("warning: \(note)") }
            let thresholds: [Double]
            let rule: String
            if let t = threshold {
                thresholds = Array(repeating: t, count: cohort.count)
                rule = "one threshold for every row: risk >= \(t)"
            } else if let policyThresholds = cohort.thresholds, let m {
                thresholds = policyThresholds
                rule = "the model's policy (version \(m.policy.version), \(m.policy.constraint) / \(m.policy.objective)): each row's group threshold or the fallback \(m.policy.fallbackThreshold)"
            } else {
                throw VigilError(.usage, "without --model, give --threshold")
            }
            options.resampling = cohort.resampling
            let decisions = zip(cohort.risks, thresholds).map { GuardrailPolicy.decide(risk: $0, threshold: $1) }
            if let exportSummary {
                let summary = SiteSummary.build(
                    site: site ?? URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent, model: m?.name ?? "scores:\(scoresColumn ?? "")",
                    modelVersion: m?.version ?? "", modelSHA256: m?.sha256 ?? cohort.scoreSource, groupFields: group, groupLabels: cohort.groupLabels,
                    risks: cohort.risks, labels: cohort.labels, decisions: decisions, minCell: minCell, features: cohort.featureHistograms)
                try summary.write(to: exportSummary)
                log.line("wrote \(exportSummary): site '\(summary.site)', \(summary.cells.count) cells, \(summary.rows) rows; \(summary.suppressedCells) cells below \(minCell) (\(summary.suppressedRows) rows) merged into \(SiteSummary.suppressedLabel)")
                if json == nil && html == nil { return }
            }
            let data = try FairnessAudit.Data(risks: cohort.risks, labels: cohort.labels, decisions: decisions, fields: group, groupLabels: cohort.groupLabels)
            options.tradeoffGrid = AuditReport.grid(maxRisk: cohort.risks.max() ?? 1)
            let result = try FairnessAudit.run(data, options: options)
            var report = AuditReport(
                result: result, cohort: cohort, showFallbacks: threshold == nil, modelDescription: m.map(Self.describe),
                decisionRule: rule, thresholds: thresholds, labelColumn: label)
            if attribution {
                guard let m else { throw VigilError(.usage, "--attribution needs --model (the rows are explained)") }
                report.attribution = try AttributionByGroup(
                    model: m, fields: group.filter { f in m.groups.contains { $0.name == f } }, references: options.references, url: url,
                    format: inputFormat, limits: .init(maxFieldBytes: maxFieldBytes, maxRecordBytes: maxRecordBytes),
                    replicates: min(bootstrap, 200), seed: seed)
            }
            if let field = counterfactual {
                guard let m else { throw VigilError(.usage, "--counterfactual needs --model (the rows are rescored)") }
                guard threshold == nil else { throw VigilError(.usage, "--counterfactual compares the policy's thresholds; leave out --threshold") }
                let cf = try Counterfactual(model: m, field: field, url: url, format: inputFormat, limits: .init(maxFieldBytes: maxFieldBytes, maxRecordBytes: maxRecordBytes))
                report.counterfactual = cf
                for from in cf.cells.keys.sorted() {
                    for (to, c) in cf.cells[from]!.sorted(by: { $0.key < $1.key }) {
                        log.line("  counterfactual \(cf.group) \(from) -> \(to): \(c.flips) of \(c.n) decisions flip (model \(c.modelFlips), threshold \(c.thresholdFlips)); mean |risk change| \(String(format: "%.4g", c.sumAbsDeltaRisk / Double(max(c.n, 1))))")
                    }
                }
            }
            if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
            if let html { try writeReport(report.html(), to: html) }
            if threshold == nil {
                for (reason, count) in cohort.fallbacks.sorted(by: { $0.key < $1.key }) {
                    log.line("note: \(count) rows took the fallback threshold: \(reason)")
                }
            }
            for v in result.views { for w in v.warnings { log.line("warning: \(w)") } }
            log.line("audited \(result.rows) rows (\(cohort.labels.filter { $0 }.count) positive), \(result.views.count) views, \(bootstrap) bootstrap replicates (seed \(seed))")
            if !quiet {
                for v in result.views {
                    let tpr = v.disparities[.tpr]!
                    let ci = v.disparityIntervals[.tpr]?["difference_between_groups"]
                    log.line("  \(v.name): TPR gap \(AuditReport.fmt(tpr.differenceBetweenGroups))\(ci.map { String(format: " [%.4f, %.4f]", $0.lower, $0.upper) } ?? "") between \(tpr.argMax ?? "-") and \(tpr.argMin ?? "-")")
                }
            }
            if let json { log.line("wrote \(json)") }
            if let html { log.line("wrote \(html)") }
        }
    }
}

extension LabelledCohort {
    /// Row keys for a subset of the cohort's fields.
    func groupKeys(_ fields: [String]) -> [String] {
        let idx = fields.map { f in self.fields.firstIndex(of: f)! }
        return (0..<count).map { r in idx.map { groupLabels[$0][r] }.joined(separator: "|") }
    }
}

extension Audit {
    /// The audited model in the report: name, version, format, model file SHA-256, and the
    /// policy and package that decided (issue 18), so an audit names exactly what it judged.
    static func describe(_ m: VigilModel) -> String {
        var s = "\(m.name) \(m.version) (\(m.format.displayName), sha256 \(m.sha256)"
        if !m.policy.sha256.isEmpty { s += "; policy \(m.policy.version) sha256 \(m.policy.sha256)" }
        if let digest = m.packageDigest { s += "; package digest \(digest)" }
        return s + ")"
    }
}
