import ArgumentParser
import Foundation
import VigilEngine
import VigilServer

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Two versions of a model on the same labelled rows: paired per-group differences, decision flips, risk shift, attribution change.",
        discussion: """
            Both packages score every row of --input, each deciding with its own policy. For every \
            audit metric, overall and in every group and intersection of the --group fields: \
            baseline, candidate and the paired difference (candidate - baseline) with a \
            percentile bootstrap interval from shared resamples (each replicate weights the same \
            rows for both versions), stratified by group, or by whole patients with --cluster. Per \
            group: decisions that flipped, by direction and label (newly missed positives, new \
            false alarms), and the mean risk shift. Findings, at the top of both reports: every \
            eligible group where AUROC, AUPRC, FNR, FPR, PPV, NPV or ECE got worse by at least a \
            margin (the plan's non-inferiority margin for it, else 0.02); lost discrimination or \
            calibration first, then missed positives, then the rest of the operating point; \
            significant ones first within each. \
            With --plan, its non-inferiority margins are judged on the interval's bound and the \
            exit status is 3 when one is not met; the plan then fixes groups and bootstrap. \
            With --ledger instead of --input and --label, the rows are a shadow deployment's \
            (vigil serve --model BASELINE --shadow CANDIDATE): every request both versions scored \
            and whose outcome arrived, with the risks, thresholds and decisions as served and \
            production's groups; the ledger must verify.
            """)

    @Option(name: .long, help: "The version in use (package folder).")
    var baseline: String

    @Option(name: .long, help: "The version proposed (package folder).")
    var candidate: String

    @Option(name: .long, help: "Labelled cohort: CSV with a header, or JSON Lines; both models read their features from it.")
    var input: String?

    @Option(name: .long, help: "Column holding the 0/1 outcome.")
    var label: String?

    @Option(name: .long, help: "Audit ledger of a shadow deployment (instead of --input/--label): baseline = production, candidate = shadow.")
    var ledger: String?

    @Option(name: .long, help: "Group field (repeatable; default: the plan's group_fields).")
    var group: [String] = []

    @Option(name: .long, help: "Validation plan whose non_inferiority margins are judged (and whose groups and bootstrap are used).")
    var plan: String?

    @Option(name: .long, help: "Column identifying each row's patient (or stay): resample patients, not rows.")
    var cluster: String?

    @Option(name: .long, help: "Bootstrap replicates (default 1000; with --plan, the plan's).")
    var bootstrap: Int?

    @Option(name: .long, help: "Seed of the bootstrap (default 20240601; with --plan, the plan's).")
    var seed: UInt64?

    @Option(name: .long, help: "Groups with fewer rows get no findings or margins (default 30; with --plan, the plan's).")
    var minGroupSize: Int?

    @Flag(name: .long, help: "Skip the attribution change (mean |attribution| per feature for both versions).")
    var noAttribution = false

    @Option(name: .long, help: "Write the comparison as JSON here.")
    var json: String?

    @Option(name: .long, help: "Write the HTML report here.")
    var html: String?

    @Option(name: .long, help: "Input format: csv or jsonl (default: from the file name).")
    var inputFormat: CohortFormat?

    @Flag(name: .long, help: "No summary on standard error.")
    var quiet = false

    func run() throws {
        var failed = false
        try runReportingErrors {
            let log = StandardError(quiet: quiet)
            guard json != nil || html != nil else { throw VigilError(.usage, "give --json FILE and/or --html FILE") }
            let plan = try self.plan.map { try ValidationPlan.load(path: $0) }
            if let plan {
                for (flag, given) in [("--bootstrap", bootstrap != nil), ("--seed", seed != nil), ("--min-group-size", minGroupSize != nil)] where given {
                    throw VigilError(.usage, "\(flag): the plan '\(plan.name)' fixes the bootstrap and group sizes; leave \(flag) out")
                }
                if !group.isEmpty, group != plan.groupFields {
                    throw VigilError(.usage, "--group \(group.joined(separator: " --group ")): the plan's group_fields are \(plan.groupFields); leave --group out")
                }
            }
            let fields = group.isEmpty ? (plan?.groupFields ?? []) : group
            guard !fields.isEmpty else { throw VigilError(.usage, "give at least one --group (or a --plan with group_fields)") }
            let clusterColumn = try Validate.clusterColumn(flag: cluster, plan: plan)
            var options = PairedComparison.Options()
            options.replicates = plan?.replicates ?? bootstrap ?? 1000
            options.seed = plan?.seed ?? seed ?? 20240601
            options.confidence = plan?.confidence ?? 0.95
            options.minGroupSize = plan?.minGroupSize ?? minGroupSize ?? 30
            guard options.replicates >= 0, options.replicates <= 100_000 else { throw VigilError(.usage, "--bootstrap \(options.replicates) must be in [0, 100000]") }
            guard options.minGroupSize >= 0 else { throw VigilError(.usage, "--min-group-size \(options.minGroupSize) must be >= 0") }

            let a = try VigilModel.load(path: baseline)
            let b = try VigilModel.load(path: candidate)
            for w in a.loadWarnings { log.line("warning: baseline: \(w)") }
            for w in b.loadWarnings { log.line("warning: candidate: \(w)") }
            let report: CompareReport
            switch (ledger, input, label) {
            case (let l?, nil, nil):
                guard clusterColumn == nil else { throw VigilError(.usage, "--cluster: ledger entries name no patient; a --ledger comparison resamples requests (leave --cluster out, or use a plan without \"cluster\")") }
                report = try Self.evaluate(baseline: a, candidate: b, ledger: l, fields: fields, plan: plan, options: options, log: log)
            case (nil, let i?, let lab?):
                report = try Self.evaluate(baseline: a, candidate: b, input: i, label: lab, fields: fields, plan: plan, options: options,
                                           clusterColumn: clusterColumn, attribution: !noAttribution, format: inputFormat, log: log)
            default:
                throw VigilError(.usage, "give --input COHORT and --label COLUMN, or --ledger FILE (a shadow deployment's ledger) instead of both")
            }
            let (ca, judged) = (report.cohort, report.nonInferiority)
            if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
            if let html { try writeReport(report.html(), to: html) }
            log.line("compared \(a.name) \(a.version) -> \(b.name) \(b.version) on \(ca.count) rows (\(ca.labels.filter { $0 }.count) positive), \(options.replicates) paired replicates")
            for line in report.headline { log.line("  " + line) }
            if !quiet {
                let groups = report.worseGroups
                for g in groups.prefix(10) { log.line("  worse: " + CompareReport.describe(group: g)) }
                if groups.count > 10 { log.line("  ... \(groups.count - 10) more groups in the report") }
                for j in judged where j.status == .fail || j.status == .notEvaluable {
                    log.line("  \(j.status.rawValue.uppercased()) non-inferiority \(j.margin.id) [\(j.view)=\(j.group)]: \(j.reason)")
                }
            }
            if !judged.isEmpty {
                let bad = judged.filter { $0.status == .fail || $0.status == .notEvaluable }.count
                log.line(bad == 0 ? "non-inferiority: every margin of the plan is met" : "non-inferiority: \(bad) of \(judged.count) judged lines not met")
            }
            if let json { log.line("wrote \(json)") }
            if let html { log.line("wrote \(html)") }
            failed = judged.contains { $0.status == .fail || $0.status == .notEvaluable }
        }
        if failed { throw ExitCode(3) }
    }

    /// The same rows of `input` through both versions, compared (what `vigil compare` and
    /// `vigil change-control` run); `options.resampling` comes from the cohort.
    static func evaluate(baseline a: VigilModel, candidate b: VigilModel, input: String, label: String, fields: [String], plan: ValidationPlan?,
                         options: PairedComparison.Options, clusterColumn: String?, attribution: Bool, format: CohortFormat?, log: StandardError) throws -> CompareReport {
        let explain = attribution && a.imageInput == nil && b.imageInput == nil
            && (try? a.explainer.get()) != nil && (try? b.explainer.get()) != nil
        if attribution, !explain { log.line("note: no attribution change: one of the versions cannot be explained per feature") }
        let url = URL(fileURLWithPath: input)
        let ca = try LabelledCohort.load(url: url, model: a, labelColumn: label, scoresColumn: nil, groupFields: fields, clusterColumn: clusterColumn, explain: explain, format: format)
        let cb = try LabelledCohort.load(url: url, model: b, labelColumn: label, scoresColumn: nil, groupFields: fields, clusterColumn: nil, explain: explain, format: format)
        for note in ca.notes { log.line("warning: \(note)") }
        guard ca.count == cb.count, ca.ids == cb.ids, ca.labels == cb.labels else {
            throw VigilError(.input, "\(input): the two versions read different rows (\(ca.count) and \(cb.count)); compare needs the same rows through both")
        }
        var groupMismatch = 0
        for r in 0..<ca.count where (0..<fields.count).contains(where: { ca.groupLabels[$0][r] != cb.groupLabels[$0][r] }) { groupMismatch += 1 }
        if groupMismatch > 0 {
            log.line("warning: \(groupMismatch) rows fall in different groups under the two manifests; groups here are the baseline's")
        }
        let decide = { (c: LabelledCohort) in zip(c.risks, c.thresholds!).map { GuardrailPolicy.decide(risk: $0, threshold: $1) } }
        return try report(a, b, ca, cb, decisions: (decide(ca), decide(cb)), label: label, plan: plan, options: options, groupMismatch: groupMismatch)
    }

    /// A shadow deployment's paired rows from the audit ledger (`ShadowTrial`), compared.
    static func evaluate(baseline a: VigilModel, candidate b: VigilModel, ledger: String, fields: [String], plan: ValidationPlan?,
                         options: PairedComparison.Options, log: StandardError) throws -> CompareReport {
        let verified = try AuditLedger.verify(path: ledger)
        if let problem = verified.problems.first {
            throw VigilError(.input, "\(ledger): does not verify (\(problem)); compare reads only a ledger whose chain holds (vigil ledger verify)")
        }
        let trial = try ShadowTrial.read(entries: verified.entries, file: ledger, baseline: a, candidate: b)
        let columns = try fields.map { f -> Int in
            guard let i = a.groups.firstIndex(where: { $0.name == f }) else {
                throw VigilError(.usage, "--group \(f): not a group field of '\(a.name)' (\(a.groups.map(\.name).joined(separator: ", "))); the ledger holds its groups only")
            }
            return i
        }
        guard trial.count > 0 else {
            throw VigilError(.input, "\(ledger): no request was scored by both \(a.name) \(a.version) (production, sha256 \(a.sha256.prefix(12))) and \(b.name) \(b.version) (shadow, sha256 \(b.sha256.prefix(12))) with an outcome recorded (\(trial.withoutShadow) production predictions without a shadow prediction, \(trial.withoutOutcome) without an outcome)")
        }
        if trial.withoutShadow + trial.withoutOutcome > 0 {
            log.line("note: \(trial.withoutShadow) production predictions have no shadow prediction and \(trial.withoutOutcome) no outcome yet; they are left out")
        }
        let url = URL(fileURLWithPath: ledger)
        let sha = try SHA256Digest.hex(ofFileAt: url)
        let groupLabels = columns.map { c in trial.groups.map { $0[c] } }
        let ca = LabelledCohort(url: url, sha256: sha, ids: trial.ids, risks: trial.baselineRisks, labels: trial.labels, fields: fields, groupLabels: groupLabels,
                                thresholds: trial.baselineThresholds, scoreSource: "ledger: \(a.name) \(a.version), production")
        let cb = LabelledCohort(url: url, sha256: sha, ids: trial.ids, risks: trial.candidateRisks, labels: trial.labels, fields: fields, groupLabels: groupLabels,
                                thresholds: trial.candidateThresholds, scoreSource: "ledger: \(b.name) \(b.version), shadow")
        return try report(a, b, ca, cb, decisions: (trial.baselineDecisions, trial.candidateDecisions), label: "outcome (ledger)", plan: plan, options: options, groupMismatch: 0)
    }

    static func report(_ a: VigilModel, _ b: VigilModel, _ ca: LabelledCohort, _ cb: LabelledCohort, decisions: ([Bool], [Bool]), label: String,
                       plan: ValidationPlan?, options: PairedComparison.Options, groupMismatch: Int) throws -> CompareReport {
        var options = options
        options.resampling = ca.resampling
        let data = try PairedComparison.Data(
            baselineRisks: ca.risks, candidateRisks: cb.risks, baselineDecisions: decisions.0, candidateDecisions: decisions.1,
            labels: ca.labels, fields: ca.fields, groupLabels: ca.groupLabels)
        let result = try PairedComparison.run(data, options: options)
        let margins = plan?.nonInferiority ?? []
        return CompareReport(baselineModel: a, candidateModel: b, cohort: ca, candidateCohort: cb, labelColumn: label, plan: plan,
                             result: result, findings: PairedComparison.findings(result, margins: margins),
                             nonInferiority: try PairedComparison.judge(result, margins: margins), groupMismatch: groupMismatch)
    }
}
