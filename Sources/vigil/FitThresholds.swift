import ArgumentParser
import Foundation
import VigilEngine

struct FitThresholds: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit-thresholds",
        abstract: "Fit per-group decision thresholds on a labelled cohort and write a policy.json.",
        discussion: """
            Risks come from --model (Vigil scores every row) or from --scores-column. Groups are \
            the manifest's group fields named by --group (several make an intersection, keyed \
            'A|B'); without --model, --group names input columns whose raw text is the label.

            The search is exact and deterministic: every group's distinct risks are its candidate \
            cut points (decision risk >= threshold; the threshold written sits halfway to the \
            next lower risk, so last-bit differences in a risk cannot flip a decision), and the \
            policy maximises the pooled objective subject to the constraint within --tolerance. Groups with fewer than \
            --min-group-size rows, or without the labels the constraint needs (no positives for \
            a TPR constraint), take the fallback: the single best threshold for everyone.

            Constraints: none, tpr_parity, fnr_parity, fpr_parity, equalized_odds, \
            demographic_parity, min_sensitivity (with --target S: each group's TPR >= S at its \
            highest such threshold). Objectives: accuracy, balanced_accuracy, cost (with \
            --cost-fn and --cost-fp).

            With --model (and no --scores-column), the policy records that model's name, version \
            and SHA-256 ("model"), and Vigil refuses to load it with any other model file. The \
            package's current policy.json is not read.
            """)

    @Option(name: .long, help: "Labelled cohort: CSV with a header, or JSON Lines.")
    var input: String

    @Option(name: .long, help: "Column holding the 0/1 outcome.")
    var label: String

    @Option(name: .long, help: "Model package folder: scores the rows and maps group fields.")
    var model: String?

    @Option(name: .long, help: "Column holding risks in [0, 1] (instead of scoring with --model).")
    var scoresColumn: String?

    @Option(name: .long, help: "Group field (repeatable; several make an intersection).")
    var group: [String] = []

    @Option(name: .long, help: "none, tpr_parity, fnr_parity, fpr_parity, equalized_odds, demographic_parity or min_sensitivity.")
    var constraint: String = "tpr_parity"

    @Option(name: .long, help: "accuracy, balanced_accuracy or cost.")
    var objective: String = "balanced_accuracy"

    @Option(name: .long, help: "Largest allowed gap between groups' constrained rates.")
    var tolerance: Double = 0.02

    @Option(name: .long, help: "Minimum sensitivity for min_sensitivity.")
    var target: Double?

    @Option(name: .long, help: "Cost of a false negative (objective cost).")
    var costFn: Double?

    @Option(name: .long, help: "Cost of a false positive (objective cost).")
    var costFp: Double?

    @Option(name: .long, help: "Groups with fewer rows take the fallback threshold.")
    var minGroupSize: Int = 30

    @Option(name: .long, help: "Where to write the policy (policy.json).")
    var output: String

    @Option(name: .long, help: "The policy's version string.")
    var policyVersion: String = "1"

    @Option(name: .long, help: "Input format: csv or jsonl (default: from the file name).")
    var inputFormat: CohortFormat?

    @Flag(name: .long, help: "No summary on standard error.")
    var quiet = false

    func run() throws {
        try runReportingErrors {
            let log = StandardError(quiet: quiet)
            let constraint = try FairnessConstraint(name: constraint, target: target)
            let objective = try FitObjective(name: objective, costFN: costFn, costFP: costFp)
            guard Set(group).count == group.count else { throw VigilError(.usage, "--group lists a field twice: \(group)") }
            // The package's current policy is not used (a new one is fitted) and must not stop a
            // refit after retraining, when it is still bound to the previous model file.
            let m = try model.map { try VigilModel.load(path: $0, policy: .skipped) }
            let url = URL(fileURLWithPath: input)
            let cohort = try LabelledCohort.load(url: url, model: m, labelColumn: label, scoresColumn: scoresColumn, groupFields: group, format: inputFormat)
            for note in cohort.notes { log.line("warning: \(note)") }
            let result = try ThresholdFitter.fit(
                risks: cohort.risks, labels: cohort.labels,
                groupKeys: group.isEmpty ? Array(repeating: "", count: cohort.count) : cohort.groupKeys,
                options: .init(constraint: constraint, objective: objective, tolerance: tolerance, minGroupSize: minGroupSize))
            let doc = result.policyJSON(
                groupFields: group,
                provenance: .init(
                    file: url.lastPathComponent, sha256: cohort.sha256, labelColumn: label, scores: cohort.scoreSource, version: policyVersion,
                    // Bound to the model whose risks were fitted; risks from a column name no model.
                    model: scoresColumn == nil ? m.map { GuardrailPolicy.ModelBinding(name: $0.name, version: $0.version, sha256: $0.sha256) } : nil))
            let text = doc.text() + "\n"
            // Read it back as Vigil will at serving time, before writing.
            let policy = try GuardrailPolicy.load(data: Data(text.utf8), file: output)
            if let m, let bad = policy.groupFields.first(where: { f in !m.groups.contains { $0.name == f } }) {
                throw VigilError(.usage, "--group \(bad) is not a group field of \(m.name)")
            }
            try doc.write(to: URL(fileURLWithPath: output))
            for n in result.notes { log.line("note: \(n)") }
            log.line("fitted \(constraint.name) / \(objective.name) on \(result.rows) rows (\(result.positives) positive) from \(url.lastPathComponent), risks from \(cohort.scoreSource)")
            if !group.isEmpty {
                let rows = result.groups.map { g in
                    [g.key, String(g.n), String(g.positives), String(format: "%.6f", g.threshold),
                     g.tpr.map { String(format: "%.4f", $0) } ?? "-", g.fpr.map { String(format: "%.4f", $0) } ?? "-",
                     String(format: "%.4f", g.selectionRate),
                     g.constrained ? "fitted" : (g.fallbackReason != nil ? "fallback (\(g.fallbackReason!))" : "fallback (small)")]
                }
                if !quiet { printTable(header: ["group", "n", "pos", "threshold", "TPR", "FPR", "selected", "entry"], rows: rows, to: log) }
            }
            log.line(String(format: "%@ %.6f with the policy; %.6f with one threshold (%.6f) for everyone", objective.name, result.objective, result.baselineObjective, result.fallbackThreshold))
            if let v = result.violation {
                if case .minSensitivity(let t) = constraint {
                    log.line(String(format: "lowest group TPR falls %.6f below the target %.4f", v, t))
                } else {
                    log.line(String(format: "constraint gap %.6f (tolerance %.6f)", v, tolerance))
                }
            }
            if let m, scoresColumn == nil {
                log.line("bound to \(m.name) \(m.version) (model sha256 \(m.sha256)): loading it with another model file is refused")
            } else {
                log.line("note: the risks came from --scores-column, so the policy names no model; Vigil will apply it to any model with a warning")
            }
            log.line("wrote \(output)")
        }
    }
}
