import Testing
import VigilAudit
import VigilCore

/// The federated AUROC bound (SiteSummary, FederatedAudit): the one-pass grid computation equals
/// the pair-by-pair definition on random interval histograms, the exact AUROC of the underlying
/// scores lies inside the bound, and no reported cell or bin is below min_cell.
struct SiteSummaryTests {
    @Test func theAUROCBoundEqualsThePairByPairDefinitionAndHoldsTheExactValue() {
        var g = SplitMix64(seed: 11)
        func uniform() -> Double { Double(g.next() >> 11) / Double(1 << 53) }
        for trial in 0..<20 {
            // Scores of two classes, two sites, two groups; positives shifted up.
            let n = 300 + trial * 40
            var risks: [Double] = [], labels: [Bool] = [], groups: [String] = []
            for i in 0..<n {
                let label = uniform() < 0.3
                risks.append(min(1, max(0, uniform() * 0.6 + (label ? 0.25 : 0))))
                labels.append(label)
                groups.append(i % 2 == 0 ? "A" : "B")
            }
            let summary = SiteSummary.build(site: "s", model: "m", modelVersion: "1", modelSHA256: "x", groupFields: ["g"], groupLabels: [groups],
                                            risks: risks, labels: labels, decisions: risks.map { $0 >= 0.5 }, bins: 200, minCell: 5)
            for c in summary.cells {
                #expect(c.n >= 5 && c.positives >= 5 && c.negatives >= 5)
                #expect((c.positiveScores + c.negativeScores).allSatisfy { $0.count >= 5 })
            }
            let m = FederatedAudit.Metrics(summary.cells)
            let a = try! #require(m.auroc)
            // The definition, pair by pair.
            var sure = 0.0, unsure = 0.0
            for p in m.positiveScores {
                for q in m.negativeScores {
                    let pairs = Double(p.count) * Double(q.count)
                    if p.lo >= q.hi { sure += pairs } else if p.hi > q.lo { unsure += pairs }
                }
            }
            let pn = Double(m.positives) * Double(m.negatives)
            #expect(abs(a.lower - sure / pn) < 1e-12 && abs(a.upper - (sure + unsure) / pn) < 1e-12, "trial \(trial)")
            // The exact AUROC of the scores (ties count 1/2) lies inside.
            let pos = zip(risks, labels).filter { $0.1 }.map(\.0), neg = zip(risks, labels).filter { !$0.1 }.map(\.0)
            var wins = 0.0
            for x in pos { for y in neg { wins += x > y ? 1 : x == y ? 0.5 : 0 } }
            let exact = wins / (Double(pos.count) * Double(neg.count))
            #expect(a.lower <= exact + 1e-12 && exact <= a.upper + 1e-12, "trial \(trial): \(exact) outside [\(a.lower), \(a.upper)]")
        }
    }

    @Test func smallCellsAreMergedUntilNothingSmallIsReported() {
        func build(_ groups: [String]) -> SiteSummary {
            let labels = groups.indices.map { $0 % 4 == 0 }
            return SiteSummary.build(site: "s", model: "m", modelVersion: "1", modelSHA256: "x", groupFields: ["g"], groupLabels: [groups],
                                     risks: groups.indices.map { Double($0 % 10) / 10 }, labels: labels, decisions: labels, minCell: 11)
        }
        // B (10 positives) and C (3 rows) are both below 11: together they are not.
        let a = build(Array(repeating: "A", count: 200) + Array(repeating: "B", count: 40) + ["C", "C", "C"])
        #expect(a.cells.map(\.labels) == [["A"], [SiteSummary.suppressedLabel]], "\(a.cells.map(\.labels))")
        #expect(a.suppressedCells == 2 && a.suppressedRows == 43 && a.rows == 243)
        // C alone is small, so the smallest reported cell (B, 60 rows) joins it: C's counts can
        // not be had as a total minus the reported cells.
        let b = build(Array(repeating: "A", count: 200) + Array(repeating: "B", count: 60) + ["C", "C", "C"])
        #expect(b.cells.map(\.labels) == [["A"], [SiteSummary.suppressedLabel]], "\(b.cells.map(\.labels))")
        #expect(b.suppressedCells == 2 && b.suppressedRows == 63)
        // Everything small: nothing is reported.
        let c = build(["A", "A", "B"])
        #expect(c.cells.isEmpty && c.suppressedRows == 3)
    }
}
