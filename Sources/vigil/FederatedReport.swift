import Foundation
import VigilEngine

/// `vigil audit --merge A.json B.json ...`: site summaries pooled (docs/FORMATS.md, "Site
/// summary" and "Federated audit"). Per site and pooled, overall and per group of each field:
/// counts, TPR, FPR, PPV and selection rate with Wilson 95% intervals (exact: the summaries hold
/// the confusion counts), AUROC from the binned scores with its bound, calibration in the large
/// with the mean risk's bounds; across sites, Cochran's Q and I² of TPR and FPR.
enum FederatedReport {
    static func run(files: [String], json: String?, log: StandardError) throws {
        let sites = try files.map { try SiteSummary.read(path: $0) }
        let first = sites[0]
        for (f, s) in zip(files, sites) {
            guard s.modelSHA256 == first.modelSHA256, s.model == first.model else {
                throw VigilError(.input, "\(f): site '\(s.site)' summarised model \(s.model) (sha256 \(s.modelSHA256.prefix(12))), \(files[0]) model \(first.model) (sha256 \(first.modelSHA256.prefix(12))); only summaries of one model version merge")
            }
            guard s.groupFields == first.groupFields, s.bins == first.bins else {
                throw VigilError(.input, "\(f): group fields \(s.groupFields) and \(s.bins) score bins; \(files[0]) has \(first.groupFields) and \(first.bins): summaries merge only on the same cells")
            }
        }
        let names = sites.map(\.site)
        guard Set(names).count == names.count else { throw VigilError(.input, "two summaries are of the same site (\(names.joined(separator: ", "))); each site once") }
        typealias M = FederatedAudit.Metrics
        func metrics(_ cells: [SiteSummary.Cell]) -> M { M(cells) }
        func rate(_ k: Int, _ n: Int) -> JSONOutput {
            guard let w = Stats.wilson(k, n) else { return .null }
            return .object([("value", .number(w.rate)), ("low", .number(w.low)), ("high", .number(w.high)), ("n", .int(n))])
        }
        func describe(_ m: M) -> JSONOutput {
            var o: [(String, JSONOutput)] = [("n", .int(m.n)), ("positives", .int(m.positives)), ("negatives", .int(m.negatives)),
                                             ("tp", .int(m.tp)), ("fp", .int(m.fp)), ("tn", .int(m.tn)), ("fn", .int(m.fn)),
                                             ("tpr", rate(m.tp, m.positives)), ("fpr", rate(m.fp, m.negatives)), ("ppv", rate(m.tp, m.tp + m.fp)),
                                             ("selection_rate", rate(m.tp + m.fp, m.n))]
            if let a = m.auroc {
                o.append(("auroc", .object([("estimate", .number(a.estimate)), ("lower", .number(a.lower)), ("upper", .number(a.upper)),
                                            ("bound", .number(max(a.estimate - a.lower, a.upper - a.estimate)))])))
            } else {
                o.append(("auroc", .null))
            }
            if let c = m.calibrationInTheLarge(bins: first.bins) {
                o.append(("calibration_in_the_large", .object([("mean_risk_low", .number(c.meanRiskLow)), ("mean_risk_high", .number(c.meanRiskHigh)), ("observed", .number(c.observed))])))
            }
            return .object(o)
        }
        func heterogeneity(_ perSite: [M]) -> JSONOutput {
            func one(_ parts: [(k: Int, n: Int)]) -> JSONOutput {
                guard let h = FederatedAudit.heterogeneity(parts) else { return .null }
                return .object([("q", .number(h.q)), ("df", .int(h.df)), ("p_value", .number(h.p)), ("i2", .number(h.i2))])
            }
            return .object([("tpr", one(perSite.map { ($0.tp, $0.positives) })), ("fpr", one(perSite.map { ($0.fp, $0.negatives) }))])
        }
        func block(_ select: (SiteSummary.Cell) -> Bool) -> (JSONOutput, M) {
            let perSite = sites.map { s in metrics(s.cells.filter(select)) }
            let pooled = metrics(sites.flatMap { $0.cells.filter(select) })
            return (.object([("pooled", describe(pooled)), ("sites", .object(zip(names, perSite).map { ($0, describe($1)) })), ("heterogeneity", heterogeneity(perSite))]), pooled)
        }
        let (overall, pooledAll) = block { _ in true }
        var views: [(String, JSONOutput)] = []
        var lines: [String] = []
        for (i, field) in first.groupFields.enumerated() {
            let labels = Set(sites.flatMap { $0.cells.map { $0.labels[i] } }).sorted()
            var groups: [(String, JSONOutput)] = []
            var tprs: [(String, Double)] = []
            for label in labels {
                let (b, pooled) = block { $0.labels[i] == label }
                groups.append((label, b))
                if label != SiteSummary.suppressedLabel, pooled.positives > 0 { tprs.append((label, Double(pooled.tp) / Double(pooled.positives))) }
            }
            views.append((field, .object(groups)))
            if let lo = tprs.min(by: { $0.1 < $1.1 }), let hi = tprs.max(by: { $0.1 < $1.1 }), tprs.count >= 2 {
                lines.append("  \(field): pooled TPR gap \(String(format: "%.4f", hi.1 - lo.1)) between \(hi.0) and \(lo.0)")
            }
        }
        // Feature histograms: sites with the same reference buckets add up; each site's PSI
        // against the pooled distribution and its missing rate say which site differs.
        var featureParts: [(String, JSONOutput)] = []
        for name in first.features.map(\.name) {
            let perSite = sites.map { s in s.features.first { $0.name == name } }
            guard let f0 = perSite[0], perSite.allSatisfy({ $0?.edges == f0.edges }) else {
                log.line("note: feature \(name): not summarised with the same reference buckets at every site; left out of the merge")
                continue
            }
            let histograms = perSite.map { $0! }
            let pooledCounts = (0..<f0.counts.count).map { i in histograms.reduce(0) { $0 + $1.counts[i] } }
            let siteBlocks: [(String, JSONOutput)] = zip(names, histograms).map { name, h in
                let total = h.counts.reduce(0, +)
                return (name, .object([
                    ("counts", .array(h.counts.map { .int($0) })), ("suppressed", .int(h.suppressed)),
                    ("missing_rate", total > 0 ? .number(Double(h.counts.last!) / Double(total)) : .null),
                    ("psi_vs_pooled", total > 0 ? .number(Stats.psi(observed: h.counts.map(Double.init), reference: pooledCounts.map(Double.init))) : .null),
                ]))
            }
            let missing = FederatedAudit.heterogeneity(histograms.map { ($0.counts.last!, $0.counts.reduce(0, +)) })
            featureParts.append((name, .object([
                ("edges", .array(f0.edges.map { .number($0) })), ("pooled", .array(pooledCounts.map { .int($0) })), ("sites", .object(siteBlocks)),
                ("missing_rate_heterogeneity", missing.map { .object([("q", .number($0.q)), ("df", .int($0.df)), ("p_value", .number($0.p)), ("i2", .number($0.i2))]) } ?? .null),
            ])))
        }
        let doc: JSONOutput = .object([
            ("schema", .string("vigil.federated_audit/1")),
            ("model", .object([("name", .string(first.model)), ("version", .string(first.modelVersion)), ("sha256", .string(first.modelSHA256))])),
            ("sites", .array(names.map { .string($0) })), ("group_fields", .array(first.groupFields.map { .string($0) })),
            ("score_bins", .int(first.bins)), ("min_cell", .array(sites.map { .int($0.minCell) })),
            ("suppressed", .object(sites.map { ($0.site, .object([("cells", .int($0.suppressedCells)), ("rows", .int($0.suppressedRows))])) })),
            ("overall", overall), ("views", .object(views)), ("features", .object(featureParts)),
        ])
        if let json { try doc.write(to: URL(fileURLWithPath: json)) }
        let a = pooledAll.auroc
        log.line("merged \(sites.count) sites (\(names.joined(separator: ", "))): \(pooledAll.n) rows, \(pooledAll.positives) positive; pooled AUROC \(a.map { String(format: "%.4f in [%.4f, %.4f]", $0.estimate, $0.lower, $0.upper) } ?? "undefined")")
        for l in lines { log.line(l) }
        let suppressed = sites.filter { $0.suppressedRows > 0 }
        for s in suppressed { log.line("  \(s.site): \(s.suppressedCells) cells (\(s.suppressedRows) rows) below min_cell \(s.minCell) are in \(SiteSummary.suppressedLabel)") }
        if let json { log.line("wrote \(json)") }
    }
}
