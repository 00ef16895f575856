import ArgumentParser
import Foundation
import VigilEngine

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Judge a model package against a pre-specified validation plan; exit 3 when a criterion is not met.",
        discussion: """
            The plan (docs/FORMATS.md, "Validation plan") fixes the groups, the bootstrap \
            (replicates, seed, confidence, cluster column) and the acceptance criteria: floors and \
            ceilings on any audit metric overall, per group or for one group, calibration ranges, \
            the largest gap or smallest ratio between groups, minimum group sizes. Each is judged \
            on a bound of its percentile bootstrap interval (a floor on the lower bound, a ceiling \
            on the upper, a range on the whole interval), never on the point. With a cluster \
            column (--cluster, or the plan's "cluster") whole patients are resampled, not rows. \
            A criterion that cannot be estimated is not met. Exit status: 0 every criterion \
            passed, 3 one or more did not, 1 an error, 2 a usage error.
            """)

    @Option(name: .long, help: "Model package folder.")
    var model: String

    @Option(name: .long, help: "A policy.json to apply instead of the package's own; refused when it names another model's SHA-256.")
    var policy: String?

    @Option(name: .long, help: "Labelled cohort: CSV with a header, or JSON Lines.")
    var input: String

    @Option(name: .long, help: "Column holding the 0/1 outcome.")
    var label: String

    @Option(name: .long, help: "Validation plan (JSON, schema vigil.validation_plan/1).")
    var plan: String

    @Option(name: .long, help: "Column identifying the patient (or stay) of each row: the bootstrap resamples these, not rows (overrides nothing: must agree with the plan's \"cluster\").")
    var cluster: String?

    @Option(name: .long, help: "Write the validation report as JSON here.")
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
            let plan = try ValidationPlan.load(path: self.plan)
            let m = try VigilModel.load(path: model, policy: policy.map { VigilModel.PolicySource.file($0) } ?? .packageFile)
            for w in m.loadWarnings { log.line("warning: \(w)") }
            let report = try Self.evaluate(model: m, plan: plan, planFile: self.plan, input: input, label: label, cluster: cluster, format: inputFormat, log: log)
            let (cohort, result, judgements) = (report.cohort, report.result, report.judgements)
            if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
            if let html { try writeReport(report.html(), to: html) }
            let counts = report.counts
            log.line("validated \(m.name) \(m.version) against plan '\(plan.name)' \(plan.version): \(cohort.count) rows, \(result.options.resampling.clusterCount.map { "\($0) clusters, " } ?? "")\(plan.replicates) replicates")
            for j in judgements where j.status != .pass && !quiet {
                log.line("  \(j.status.rawValue.uppercased()) \(j.criterion.id) \(j.group.map { "[\($0)] " } ?? "")\(j.rule): \(j.reason)")
            }
            log.line("\(counts.pass) passed, \(counts.fail) failed, \(counts.notEvaluable) not evaluable, \(counts.skipped) skipped: \(report.verdict)")
            if let json { log.line("wrote \(json)") }
            if let html { log.line("wrote \(html)") }
            failed = !report.accepted
        }
        if failed { throw ExitCode(3) }
    }

    /// Validates `m` on the labelled cohort `input` against `plan`: what `vigil validate` and
    /// `vigil change-control` run.
    static func evaluate(model m: VigilModel, plan: ValidationPlan, planFile: String, input: String, label: String, cluster: String?, format: CohortFormat?, log: StandardError) throws -> ValidationReport {
        let clusterColumn = try clusterColumn(flag: cluster, plan: plan)
        let cohort = try LabelledCohort.load(url: URL(fileURLWithPath: input), model: m, labelColumn: label, scoresColumn: nil,
                                             groupFields: plan.groupFields, clusterColumn: clusterColumn, format: format)
        for note in cohort.notes { log.line("warning: \(note)") }
        let result = try audit(cohort, plan: plan)
        return ValidationReport(plan: plan, planFile: planFile, model: m, cohort: cohort, labelColumn: label, result: result, judgements: try plan.judge(result))
    }

    /// The plan's cluster column, or the flag's; both given and different is refused (a plan
    /// fixes its resampling before the data are seen).
    static func clusterColumn(flag: String?, plan: ValidationPlan?) throws -> String? {
        switch (flag, plan?.cluster) {
        case let (f?, p?) where f != p:
            throw VigilError(.usage, "--cluster \(f) differs from the plan's \"cluster\": \"\(p)\"; the plan fixes how the bootstrap resamples")
        case let (f, p): return f ?? p
        }
    }

    /// The audit a plan is judged on: the plan's groups, bootstrap and minimum group size.
    static func audit(_ cohort: LabelledCohort, plan: ValidationPlan) throws -> FairnessAudit.Result {
        var options = FairnessAudit.Options()
        options.replicates = plan.replicates
        options.seed = plan.seed
        options.confidence = plan.confidence
        options.minGroupSize = plan.minGroupSize
        options.resampling = cohort.resampling
        options.tradeoffGrid = [0.5]
        let decisions = zip(cohort.risks, cohort.thresholds!).map { GuardrailPolicy.decide(risk: $0, threshold: $1) }
        let data = try FairnessAudit.Data(risks: cohort.risks, labels: cohort.labels, decisions: decisions, fields: cohort.fields, groupLabels: cohort.groupLabels)
        return try FairnessAudit.run(data, options: options)
    }
}

extension Resampling {
    var clusterCount: Int? {
        if case .clusters(let c) = self { return c.count }
        return nil
    }
}
