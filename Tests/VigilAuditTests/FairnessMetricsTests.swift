import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Audit metrics against the numbers scikit-learn, Fairlearn's MetricFrame and AIF360's
/// ClassificationMetric produced on the same rows (Tests/Fixtures/fairness).
struct FairnessMetricsTests {
    static let tolerance = 1e-9

    func audit(fields: [String], references: [String: String] = [:]) throws -> FairnessAudit.Result {
        let c = FairnessFixtures.cohort
        let t = FairnessFixtures.threshold
        var options = FairnessAudit.Options()
        options.replicates = 0
        options.minGroupSize = 0
        options.references = references
        let data = try FairnessAudit.Data(
            risks: c.risks, labels: c.labels, decisions: c.risks.map { GuardrailPolicy.decide(risk: $0, threshold: t) },
            fields: fields, groupLabels: fields.map { c.field($0) })
        return try FairnessAudit.run(data, options: options)
    }

    /// Equal within the tolerance, or both undefined (null in the fixture).
    func check(_ ours: MetricValue?, _ theirs: Any?, _ what: String) {
        let expected = FairnessFixtures.number(theirs)
        switch (ours?.value, expected) {
        case (nil, nil): break
        case (let a?, let b?): #expect(abs(a - b) <= Self.tolerance, "\(what): Vigil \(a), reference \(b)")
        default: Issue.record("\(what): Vigil \(String(describing: ours)), reference \(String(describing: expected))")
        }
    }

    @Test func perGroupAndOverallMetricsEqualScikitLearnAndFairlearn() throws {
        let views = FairnessFixtures.expected["metrics"] as! [[String: Any]]
        #expect(views.count == 3)
        for view in views {
            let fields = view["fields"] as! [String]
            let result = try audit(fields: fields)
            let ours = try #require(result.views.first { $0.fields == fields })
            let groups = view["groups"] as! [String: [String: Any]]
            #expect(Set(ours.groups.map(\.key)) == Set(groups.keys))
            for g in ours.groups {
                let e = try #require(groups[g.key])
                #expect(g.n == (e["n"] as! NSNumber).intValue)
                #expect(g.metrics[.positives]?.value == (e["positives"] as! NSNumber).doubleValue)
                for m in Metric.allCases where !m.isCount {
                    check(g.metrics[m], e[m.rawValue], "\(ours.name)=\(g.key) \(m.rawValue)")
                }
            }
            let overall = view["overall"] as! [String: Any]
            for m in Metric.allCases where !m.isCount { check(result.overall.metrics[m], overall[m.rawValue], "overall \(m.rawValue)") }
        }
    }

    @Test func undefinedMetricsAreReportedWithAReasonNeverZero() throws {
        let result = try audit(fields: ["race"])
        let race = try #require(result.views.first)
        let asian = try #require(race.groups.first { $0.key == "Asian" })
        #expect(asian.metrics[.positives]?.value == 0)
        for m in [Metric.tpr, .fnr, .auroc, .auprc, .balancedAccuracy, .calibrationSlope] {
            #expect(asian.metrics[m]?.value == nil, "\(m.rawValue) must be undefined without positives")
            #expect(asian.metrics[m]?.reason?.contains("positive") == true, "\(m.rawValue): \(String(describing: asian.metrics[m]))")
        }
        #expect(asian.metrics[.fpr]?.value != nil)
        // The TPR gap leaves the undefined group out and says so.
        #expect(race.disparities[.tpr]?.excluded["Asian"] != nil)
    }

    @Test func disparitySummariesEqualFairlearnMetricFrame() throws {
        for view in FairnessFixtures.expected["metrics"] as! [[String: Any]] {
            let fields = view["fields"] as! [String]
            let ours = try #require(try audit(fields: fields).views.first { $0.fields == fields })
            let disparities = view["disparities"] as! [String: [String: Any]]
            for m in Metric.allCases where !m.isCount {
                let e = try #require(disparities[m.rawValue])
                let d = try #require(ours.disparities[m])
                let what = "\(ours.name) \(m.rawValue)"
                check(d.groupMin, e["group_min"], "\(what) group_min")
                check(d.groupMax, e["group_max"], "\(what) group_max")
                check(d.differenceBetweenGroups, e["difference_between_groups"], "\(what) difference between groups")
                check(d.differenceToOverall, e["difference_to_overall"], "\(what) difference to overall")
                // Vigil refuses ratios of signed values (calibration intercepts), where Fairlearn divides.
                if d.groupMin.value.map({ $0 >= 0 }) ?? true {
                    check(d.ratioBetweenGroups, e["ratio_between_groups"], "\(what) ratio between groups")
                    check(d.ratioToOverall, e["ratio_to_overall"], "\(what) ratio to overall")
                } else {
                    #expect(d.ratioBetweenGroups.reason?.contains("sign") == true)
                }
            }
        }
    }

    @Test func referenceComparisonsEqualAIF360() throws {
        for view in FairnessFixtures.expected["aif360"] as! [[String: Any]] {
            let field = view["field"] as! String, reference = view["reference"] as! String
            let ours = try #require(try audit(fields: [field], references: [field: reference]).views.first)
            #expect(ours.reference == reference)
            let groups = view["groups"] as! [String: [String: Any]]
            for (key, e) in groups {
                let g = try #require(ours.groups.first { $0.key == key })
                let c = try #require(g.comparison)
                for (i, name) in ReferenceComparison.names.enumerated() {
                    check(c.all[i], e[name], "\(field)=\(key) vs \(reference) \(name)")
                }
            }
        }
    }

    @Test func bootstrapIntervalsAreSeededAndBracketTheEstimate() throws {
        let c = FairnessFixtures.cohort
        var options = FairnessAudit.Options()
        options.replicates = 60
        options.seed = 7
        let data = try FairnessAudit.Data(
            risks: c.risks, labels: c.labels, decisions: c.risks.map { $0 >= 0.11 }, fields: ["sex"], groupLabels: [c.sex])
        options.threads = 1
        let a = try FairnessAudit.run(data, options: options)
        options.threads = 4
        let b = try FairnessAudit.run(data, options: options)
        let ga = a.views[0].groups[0], gb = b.views[0].groups[0]
        #expect(ga.intervals == gb.intervals, "same seed, different thread counts: same intervals")
        let tpr = try #require(ga.intervals[.tpr])
        let v = try #require(ga.metrics[.tpr]?.value)
        #expect(tpr.lower <= v && v <= tpr.upper && tpr.lower < tpr.upper)
        #expect(a.views[0].disparityIntervals[.tpr]?["difference_between_groups"] != nil)
        options.seed = 8
        let other = try FairnessAudit.run(data, options: options)
        #expect(other.views[0].groups[0].intervals[.tpr] != tpr)
    }

    @Test func calibrationOfAPerfectlyCalibratedSampleHasSlopeNearOne() throws {
        var g = SplitMix64(seed: 3)
        var risks: [Double] = [], labels: [Bool] = []
        for _ in 0..<20000 {
            let r = 0.02 + 0.9 * Double(g.next() >> 11) / 9_007_199_254_740_992
            risks.append(r)
            labels.append(Double(g.next() >> 11) / 9_007_199_254_740_992 < r)
        }
        let s = try LabelledScores(risks: risks, labels: labels, decisions: risks.map { $0 >= 0.5 })
        guard case .success(let fit) = LogisticCalibration.fit(s) else { Issue.record("no fit"); return }
        #expect(abs(fit.slope - 1) < 0.1 && abs(fit.intercept) < 0.1, "\(fit)")
    }
}
