import Foundation
import Testing
import VigilEngine
import VigilTesting

/// `PairedComparison`: deltas equal the difference of two audits of the same rows, and the
/// intervals come from shared resamples.
struct PairedComparisonTests {
    /// Two versions' risks on the fairness fixture's rows: the reference risks and a perturbed copy.
    static func data() throws -> PairedComparison.Data {
        let c = FairnessFixtures.cohort
        var gen = SplitMix64(seed: 5)
        let b = c.risks.map { min(1, $0 * exp((gen.unit() - 0.5) * 1.6)) }
        return try PairedComparison.Data(
            baselineRisks: c.risks, candidateRisks: b, baselineDecisions: c.risks.map { $0 >= 0.15 }, candidateDecisions: b.map { $0 >= 0.13 },
            labels: c.labels, fields: ["race", "sex"], groupLabels: [c.field("race"), c.field("sex")])
    }

    static func audit(risks: [Double], decisions: [Bool], _ d: PairedComparison.Data) throws -> FairnessAudit.Result {
        var o = FairnessAudit.Options()
        o.replicates = 0
        o.minGroupSize = 0
        return try FairnessAudit.run(try FairnessAudit.Data(risks: risks, labels: d.labels, decisions: decisions, fields: d.fields, groupLabels: d.groupLabels), options: o)
    }

    @Test func deltasAreTheDifferenceOfTwoAuditsOfTheSameRows() throws {
        let d = try Self.data()
        var o = PairedComparison.Options()
        o.replicates = 0
        o.minGroupSize = 0
        let cmp = try PairedComparison.run(d, options: o)
        let a = try Self.audit(risks: d.baselineRisks, decisions: d.baselineDecisions, d)
        let b = try Self.audit(risks: d.candidateRisks, decisions: d.candidateDecisions, d)
        var checked = 0
        for (v, view) in cmp.views.enumerated() {
            #expect(view.name == a.views[v].name)
            for g in view.groups {
                let ga = try #require(a.views[v].groups.first { $0.key == g.key }), gb = try #require(b.views[v].groups.first { $0.key == g.key })
                for m in PairedComparison.metrics {
                    switch (ga.metrics[m]?.value, gb.metrics[m]?.value, g.delta[m]?.value) {
                    case let (x?, y?, dd?): #expect(abs(dd - (y - x)) <= 1e-12, "\(view.name)=\(g.key) \(m)"); checked += 1
                    case (nil, _, nil), (_, nil, nil): break
                    default: Issue.record("\(view.name)=\(g.key) \(m): defined in one and not the other")
                    }
                }
            }
        }
        #expect(checked > 200)
        // Flips, counted by hand.
        let up = (0..<d.labels.count).filter { !d.baselineDecisions[$0] && d.candidateDecisions[$0] }.count
        let missed = (0..<d.labels.count).filter { d.labels[$0] && d.baselineDecisions[$0] && !d.candidateDecisions[$0] }.count
        #expect(cmp.overall.flips.up == up && cmp.overall.flips.newlyMissed == missed)
        #expect(cmp.overall.flips.up + cmp.overall.flips.down == (0..<d.labels.count).filter { d.baselineDecisions[$0] != d.candidateDecisions[$0] }.count)
    }

    /// Each replicate weights the same rows for both versions: recomputing one group's interval
    /// from the draws by hand gives the same bounds, and a version against itself has a zero-width
    /// interval (independent resamples would not).
    @Test func intervalsComeFromSharedResamples() throws {
        let d = try Self.data()
        var o = PairedComparison.Options()
        o.replicates = 120
        o.seed = 99
        o.minGroupSize = 0
        let cmp = try PairedComparison.run(d, options: o)
        let sex = try #require(cmp.views.first { $0.name == "sex" })
        let g = sex.groups[0]
        let rows = (0..<d.labels.count).filter { d.groupLabels[1][$0] == g.key }
        let strata = FairnessAudit.partitions(fields: d.fields, groupLabels: d.groupLabels, count: d.labels.count).first { $0.name == "sex" }!.groups.map(\.rows)
        let sa = try LabelledScores(risks: rows.map { d.baselineRisks[$0] }, labels: rows.map { d.labels[$0] }, decisions: rows.map { d.baselineDecisions[$0] }, rowIndices: rows)
        let sb = try LabelledScores(risks: rows.map { d.candidateRisks[$0] }, labels: rows.map { d.labels[$0] }, decisions: rows.map { d.candidateDecisions[$0] }, rowIndices: rows)
        var counts = [Double](repeating: 0, count: d.labels.count)
        var deltas: [Double] = []
        for r in 0..<o.replicates {
            Resampling.draw(.stratifiedRows, replicate: r, seed: o.seed, strata: strata, counts: &counts)
            let x = GroupMetrics.compute(sa, weights: sa.rows.map { counts[$0] })[.auroc]!.value!
            let y = GroupMetrics.compute(sb, weights: sb.rows.map { counts[$0] })[.auroc]!.value!
            deltas.append(y - x)
        }
        deltas.sort()
        let iv = try #require(g.deltaIntervals[.auroc])
        #expect(abs(iv.lower - Bootstrap.quantile(sorted: deltas, 0.025)) <= 1e-12 && abs(iv.upper - Bootstrap.quantile(sorted: deltas, 0.975)) <= 1e-12)

        let same = try PairedComparison.Data(baselineRisks: d.baselineRisks, candidateRisks: d.baselineRisks, baselineDecisions: d.baselineDecisions,
                                             candidateDecisions: d.baselineDecisions, labels: d.labels, fields: d.fields, groupLabels: d.groupLabels)
        let self_ = try PairedComparison.run(same, options: o)
        for m in PairedComparison.metrics {
            guard let i = self_.overall.deltaIntervals[m] else { continue }
            #expect(i.lower == 0 && i.upper == 0, "\(m) against itself: [\(i.lower), \(i.upper)]")
        }
        #expect(self_.overall.flips.total == 0 && PairedComparison.findings(self_).isEmpty)
    }

    @Test func findingsPutSignificantWorseGroupsFirstAndHonourThePlansMargin() throws {
        let d = try Self.data()
        var o = PairedComparison.Options()
        o.replicates = 200
        o.minGroupSize = 0
        let cmp = try PairedComparison.run(d, options: o)
        let found = PairedComparison.findings(cmp)
        #expect(!found.isEmpty, "a noisy candidate must be worse somewhere")
        // Tiers in order (discrimination/calibration, misses, operating point); significant first within a tier.
        #expect(found.map(\.tier) == found.map(\.tier).sorted())
        for tier in 1...3 {
            let inTier = found.filter { $0.tier == tier }
            if let firstInsignificant = inTier.firstIndex(where: { !$0.significant }) {
                #expect(!inTier[firstInsignificant...].contains { $0.significant })
            }
        }
        for f in found {
            let dir = Double(f.metric.direction!)
            #expect(-dir * f.delta >= PairedComparison.defaultMargin)
        }
        // A plan margin of 1 on AUROC silences every AUROC finding.
        let wide = [ValidationPlan.NonInferiority(id: "wide", metric: .auroc, scope: .overall, margin: 1)]
            + ["race", "sex", "race|sex"].map { ValidationPlan.NonInferiority(id: "wide-\($0)", metric: .auroc, scope: .view($0), margin: 1) }
        #expect(!PairedComparison.findings(cmp, margins: wide).contains { $0.metric == .auroc })
        let judged = try PairedComparison.judge(cmp, margins: wide)
        #expect(judged.allSatisfy { $0.status == .pass || $0.status == .notEvaluable })
        let tight = try PairedComparison.judge(cmp, margins: [ValidationPlan.NonInferiority(id: "tight", metric: .auroc, scope: .overall, margin: 0)])
        #expect(tight.count == 1 && tight[0].status == (cmp.overall.deltaIntervals[.auroc]!.lower >= 0 ? .pass : .fail))
    }
}
