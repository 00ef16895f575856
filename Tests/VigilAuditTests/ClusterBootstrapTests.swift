import Foundation
import Testing
import VigilEngine
import VigilTesting

/// The cluster bootstrap (`Resampling.clusters`): equal to the Python reference that resamples
/// patients with the same draws (Tests/Fixtures/bootstrap/make_cluster_reference.py), and blind to
/// how many rows a patient has.
struct ClusterBootstrapTests {
    static let tolerance = 1e-9

    static func loadFixture() throws -> (cohort: LabelledCohort, expected: [String: Any]) {
        let dir = Fixtures.url("bootstrap")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as? [String: Any])
        let cohort = try LabelledCohort.load(url: dir.appendingPathComponent("cohort.csv"), model: nil, labelColumn: "label", scoresColumn: "risk",
                                             groupFields: ["sex"], clusterColumn: "patient_id")
        return (cohort, expected)
    }

    static func audit(_ c: LabelledCohort, threshold: Double, replicates: Int, seed: UInt64, clusters: Bool = true) throws -> FairnessAudit.Result {
        var options = FairnessAudit.Options()
        options.replicates = replicates
        options.seed = seed
        options.minGroupSize = 0
        options.tradeoffGrid = [0.5]
        if clusters { options.resampling = c.resampling }
        let data = try FairnessAudit.Data(risks: c.risks, labels: c.labels, decisions: c.risks.map { $0 >= threshold },
                                          fields: c.fields, groupLabels: c.groupLabels)
        return try FairnessAudit.run(data, options: options)
    }

    @Test func intervalsEqualThePythonReference() throws {
        let (cohort, expected) = try Self.loadFixture()
        #expect(cohort.count == expected["rows"] as? Int)
        let clusters = try #require(cohort.clusters)
        #expect(clusters.column == "patient_id")
        #expect(clusters.count == expected["clusters"] as? Int)
        #expect(clusters.largest > 1, "the fixture must repeat patients")
        let result = try Self.audit(cohort, threshold: try #require(expected["threshold"] as? Double),
                                    replicates: try #require(expected["replicates"] as? Int),
                                    seed: UInt64(try #require(expected["seed"] as? Int)))
        let intervals = try #require(expected["intervals"] as? [String: [String: [String: Any]]])
        let sex = try #require(result.views.first { $0.name == "sex" })
        let groups: [String: FairnessAudit.Group] = ["overall": result.overall].merging(Dictionary(uniqueKeysWithValues: sex.groups.map { ($0.key, $0) })) { a, _ in a }
        var checked = 0
        for (g, metrics) in intervals {
            let group = try #require(groups[g], "group \(g)")
            for (name, ref) in metrics {
                let m = try #require(Metric(rawValue: name))
                let iv = try #require(group.intervals[m], "\(g) \(name): no interval")
                #expect(abs(iv.lower - (ref["lower"] as! Double)) <= Self.tolerance, "\(g) \(name) lower: Vigil \(iv.lower), reference \(ref["lower"]!)")
                #expect(abs(iv.upper - (ref["upper"] as! Double)) <= Self.tolerance, "\(g) \(name) upper: Vigil \(iv.upper), reference \(ref["upper"]!)")
                #expect(iv.defined == ref["defined"] as? Int, "\(g) \(name) defined replicates")
                checked += 1
            }
        }
        #expect(checked == 15)
        let gap = try #require(expected["tpr_gap_sex"] as? [String: Any])
        let ours = try #require(sex.disparityIntervals[.tpr]?["difference_between_groups"])
        #expect(abs(ours.lower - (gap["lower"] as! Double)) <= Self.tolerance && abs(ours.upper - (gap["upper"] as! Double)) <= Self.tolerance,
                "TPR gap: Vigil [\(ours.lower), \(ours.upper)], reference \(gap)")
    }

    /// A patient's rows all move together: repeating every row of the cohort k times (same
    /// patient) gives the same cluster intervals, where a row bootstrap narrows them.
    @Test func repeatingAPatientsRowsLeavesTheIntervalsAlone() throws {
        let (cohort, _) = try Self.loadFixture()
        // The fixture file with every row written four times (same patient).
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lines = try String(contentsOf: Fixtures.url("bootstrap/cohort.csv"), encoding: .utf8).split(separator: "\n")
        var text = lines[0] + "\n"
        for line in lines.dropFirst() { for _ in 0..<4 { text += line + "\n" } }
        try text.write(to: dir.file("four.csv"), atomically: true, encoding: .utf8)
        let repeated = try LabelledCohort.load(url: dir.file("four.csv"), model: nil, labelColumn: "label", scoresColumn: "risk",
                                               groupFields: ["sex"], clusterColumn: "patient_id")
        #expect(repeated.count == 4 * cohort.count)
        let once = try Self.audit(cohort, threshold: 0.5, replicates: 200, seed: 11)
        let four = try Self.audit(repeated, threshold: 0.5, replicates: 200, seed: 11)
        for m in [Metric.tpr, .fpr, .auroc, .brier, .ece, .calibrationSlope] {
            let a = try #require(once.overall.intervals[m]), b = try #require(four.overall.intervals[m])
            #expect(abs(a.lower - b.lower) <= 1e-7 && abs(a.upper - b.upper) <= 1e-7, "\(m): once [\(a.lower), \(a.upper)], four times [\(b.lower), \(b.upper)]")
        }
        let rowsOnce = try Self.audit(cohort, threshold: 0.5, replicates: 200, seed: 11, clusters: false)
        let rowsFour = try Self.audit(repeated, threshold: 0.5, replicates: 200, seed: 11, clusters: false)
        let w1 = rowsOnce.overall.intervals[.auroc]!, w4 = rowsFour.overall.intervals[.auroc]!
        #expect(w4.upper - w4.lower < 0.75 * (w1.upper - w1.lower), "a row bootstrap treats repeated rows as new patients and narrows the interval")
    }

    @Test func aRowWithoutAClusterIdIsRefusedByLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try "patient_id,sex,label,risk\np1,Male,1,0.9\n,Female,0,0.2\n".write(to: dir.file("c.csv"), atomically: true, encoding: .utf8)
        #expect {
            _ = try LabelledCohort.load(url: dir.file("c.csv"), model: nil, labelColumn: "label", scoresColumn: "risk", groupFields: ["sex"], clusterColumn: "patient_id")
        } throws: { e in
            let m = (e as? VigilError)?.message ?? ""
            return m.contains("line 3") && m.contains("patient_id") && m.contains("is missing")
        }
    }
}
