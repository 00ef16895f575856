import ArgumentParser
import Foundation
import VigilEngine
import VigilServer

/// `vigil monitor`: what a deployed model's ledger says, offline.
struct Monitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with a deployed model's monitoring data, offline.",
        subcommands: [Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a site summary for a federated audit from the audit ledger (no row, no id leaves).",
            discussion: """
                Reads the ledger (it must verify), takes the predictions of --model's version \
                (name and SHA-256) that have an outcome, and writes their additive sufficient \
                statistics per cell of the --group fields (default: every group field of the \
                manifest): rows, confusion counts at the decisions served, and each label's \
                binned scores, with every cell and bin below --min-cell merged \
                (docs/FORMATS.md, "Site summary"). Merge sites with vigil audit --merge.
                """)

        @Option(name: .long, help: "The audit ledger vigil serve wrote.")
        var ledger: String

        @Option(name: .long, help: "The model package whose predictions are summarised (its version only).")
        var model: String

        @Option(name: .long, help: "The site's name in the summary.")
        var site: String

        @Option(name: .long, help: "Group field (repeatable; default: every group field of the manifest).")
        var group: [String] = []

        @Option(name: .long, help: "Smallest number the summary may report (cells and histogram bins below it are merged).")
        var minCell = 11

        @Option(name: .long, help: "The summary file to write.")
        var out: String

        func run() throws {
            try runReportingErrors {
                let log = StandardError(quiet: false)
                guard minCell >= 1 else { throw VigilError(.usage, "--min-cell \(minCell) must be at least 1") }
                let m = try VigilModel.load(path: model)
                let verified = try AuditLedger.verify(path: ledger)
                if let problem = verified.problems.first {
                    throw VigilError(.input, "\(ledger): does not verify (\(problem)); a site summary is made only from a ledger whose chain holds")
                }
                let fields = group.isEmpty ? m.groups.map(\.name) : group
                let columns = try fields.map { f -> Int in
                    guard let i = m.groups.firstIndex(where: { $0.name == f }) else {
                        throw VigilError(.usage, "--group \(f): not a group field of '\(m.name)' (\(m.groups.map(\.name).joined(separator: ", ")))")
                    }
                    return i
                }
                let rows = try LedgerOutcomes.read(entries: verified.entries, file: ledger, model: m)
                guard rows.count > 0 else {
                    throw VigilError(.input, "\(ledger): no prediction of \(m.name) \(m.version) (sha256 \(m.sha256.prefix(12))) has an outcome (\(rows.withoutOutcome) without one)")
                }
                let summary = SiteSummary.build(site: site, model: m.name, modelVersion: m.version, modelSHA256: m.sha256, groupFields: fields,
                                                groupLabels: columns.map { c in rows.groups.map { $0[c] } },
                                                risks: rows.risks, labels: rows.labels, decisions: rows.decisions, minCell: minCell,
                                                features: rows.featureHistograms)
                try summary.write(to: out)
                log.line("wrote \(out): site '\(site)', \(rows.count) predictions with outcomes (\(rows.withoutOutcome) without one left out), \(summary.cells.count) cells; \(summary.suppressedCells) cells below \(minCell) (\(summary.suppressedRows) rows) merged into \(SiteSummary.suppressedLabel)")
            }
        }
    }
}
