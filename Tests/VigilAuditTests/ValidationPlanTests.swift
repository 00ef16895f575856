import Foundation
import Testing
import VigilEngine
import VigilTesting

/// The validation plan (docs/FORMATS.md, "Validation plan"): its schema read strictly, and each
/// criterion kind judged on the bound of its interval, not on the point.
struct ValidationPlanTests {
    static func plan(_ criteria: String, extra: String = "") throws -> ValidationPlan {
        try ValidationPlan.load(data: Data("""
            {"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["race", "sex"],
             "bootstrap": {"replicates": 200, "seed": 4}, "min_group_size": 30\(extra), "criteria": [\(criteria)]}
            """.utf8), file: "plan.json")
    }

    static let audit: FairnessAudit.Result = {
        let c = FairnessFixtures.cohort
        var o = FairnessAudit.Options()
        o.replicates = 200
        o.seed = 4
        o.minGroupSize = 30
        o.tradeoffGrid = [0.5]
        let data = try! FairnessAudit.Data(risks: c.risks, labels: c.labels, decisions: c.risks.map { $0 >= 0.12 }, fields: ["race", "sex"],
                                           groupLabels: [c.race, c.sex])
        return try! FairnessAudit.run(data, options: o)
    }()

    static func judge(_ criteria: String) throws -> [ValidationPlan.Judgement] { try plan(criteria).judge(audit) }

    @Test func aFloorIsJudgedOnTheLowerBoundNotThePoint() throws {
        let o = Self.audit.overall
        let point = o.metrics[.auroc]!.value!, lower = o.intervals[.auroc]!.lower
        #expect(lower < point)
        let between = (lower + point) / 2
        let pass = try Self.judge(#"{"id": "a", "metric": "auroc", "min": \#(lower - 0.001)}"#)
        #expect(pass.count == 1 && pass[0].status == .pass && pass[0].judged == lower)
        let fail = try Self.judge(#"{"id": "a", "metric": "auroc", "min": \#(between)}"#)
        #expect(fail[0].status == .fail && fail[0].reason.contains("the point estimate"), "\(fail[0].reason)")
        // sensitivity is TPR; a ceiling is judged on the upper bound.
        let tprUpper = o.intervals[.tpr]!.upper
        #expect(try Self.judge(#"{"id": "s", "metric": "sensitivity", "max": \#(tprUpper + 0.001)}"#)[0].status == .pass)
        #expect(try Self.judge(#"{"id": "s", "metric": "sensitivity", "max": \#(tprUpper - 0.001)}"#)[0].status == .fail)
    }

    @Test func aRangeNeedsTheWholeInterval() throws {
        let iv = Self.audit.overall.intervals[.calibrationSlope]!
        #expect(try Self.judge(#"{"id": "c", "metric": "calibration_slope", "range": [\#(iv.lower - 0.01), \#(iv.upper + 0.01)]}"#)[0].status == .pass)
        #expect(try Self.judge(#"{"id": "c", "metric": "calibration_slope", "range": [\#(iv.lower + 0.01), \#(iv.upper + 0.01)]}"#)[0].status == .fail)
        #expect(try Self.judge(#"{"id": "c", "metric": "calibration_slope", "range": [\#(iv.lower - 0.01), \#(iv.upper - 0.01)]}"#)[0].status == .fail)
    }

    @Test func aViewCriterionJudgesEveryGroupAndSmallGroupsAreNotEvaluableUnlessSkipped() throws {
        let race = Self.audit.views.first { $0.name == "race" }!
        let lines = try Self.judge(#"{"id": "g", "metric": "tpr", "view": "race", "min": 0}"#)
        #expect(lines.count == race.groups.count)
        let small = race.groups.filter { $0.n < 30 }
        #expect(!small.isEmpty, "the fixture has a race group below 30 rows")
        for g in small {
            #expect(lines.first { $0.group == g.key }?.status == .notEvaluable)
        }
        let skipped = try Self.judge(#"{"id": "g", "metric": "tpr", "view": "race", "min": 0, "small_groups": "skip"}"#)
        #expect(skipped.filter { $0.status == .skipped }.count == small.count)
        // One group, fields written in either order.
        let one = try Self.judge(#"{"id": "one", "metric": "fpr", "view": "sex|race", "group": "Female|White", "max": 1}"#)
        #expect(one.count == 1 && one[0].group == "White|Female" && one[0].status == .pass)
        let missing = try Self.judge(#"{"id": "none", "metric": "fpr", "view": "sex", "group": "Nobody", "max": 1}"#)
        #expect(missing[0].status == .notEvaluable && missing[0].reason.contains("no row"))
    }

    @Test func gapsRatiosAndSizes() throws {
        let sex = Self.audit.views.first { $0.name == "sex" }!
        let gap = sex.disparityIntervals[.tpr]!["difference_between_groups"]!
        #expect(try Self.judge(#"{"id": "gap", "metric": "tpr", "view": "sex", "max_gap": \#(gap.upper + 0.001)}"#)[0].status == .pass)
        let failing = try Self.judge(#"{"id": "gap", "metric": "tpr", "view": "sex", "max_gap": \#(gap.upper - 0.001)}"#)
        #expect(failing.count == 1 && failing[0].status == .fail && failing[0].reason.contains("between"))
        let ratio = sex.disparityIntervals[.selectionRate]!["ratio_between_groups"]!
        #expect(try Self.judge(#"{"id": "di", "metric": "selection_rate", "view": "sex", "min_ratio": \#(max(0, ratio.lower - 0.001))}"#)[0].status == .pass)
        #expect(try Self.judge(#"{"id": "di", "metric": "selection_rate", "view": "sex", "min_ratio": \#(min(1, ratio.lower + 0.001))}"#)[0].status == .fail)
        let sizes = try Self.judge(#"{"id": "n", "view": "race", "min_rows": 30, "min_positives": 1}"#)
        let race = Self.audit.views.first { $0.name == "race" }!
        for g in race.groups {
            let ok = g.n >= 30 && g.metrics[.positives]!.value! >= 1
            #expect(sizes.first { $0.group == g.key }?.status == (ok ? .pass : .fail), "\(g.key)")
        }
    }

    @Test func undefinedMetricsAreNotEvaluable() throws {
        // A group without positives has no TPR.
        let lines = try Self.judge(#"{"id": "t", "metric": "tpr", "view": "race|sex", "min": 0, "small_groups": "skip"}"#)
        let rs = Self.audit.views.first { $0.name == "race|sex" }!
        for g in rs.groups where g.n >= 30 && g.metrics[.positives]!.value == 0 {
            #expect(lines.first { $0.group == g.key }?.status == .notEvaluable)
        }
        #expect(!lines.contains { $0.status == .fail })
    }

    static let badPlans: [(String, String)] = [
        (#"{"schema": "vigil.validation_plan/2", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "auroc", "min": 0.5}]}"#, "not a supported plan schema"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": []}"#, "a plan holds 1 to"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": [], "criteria": [{"id": "a", "metric": "auroc", "min": 0.5}]}"#, "group fields"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "auroc"}]}"#, "has no rule"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "auroc", "min": 0.5, "max": 0.9}]}"#, "2 rules"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "f1", "min": 0.5}]}"#, "'f1' is not a metric"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "auroc", "min": "0.5"}]}"#, "expected a number"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "auroc", "min": 1e400}]}"#, "not valid JSON"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "auroc", "view": "race", "min": 0.5}]}"#, "is not a view"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "max_gap": 0.1}]}"#, "compares the groups of a view"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "view": "sex", "min_ratio": 1.5}]}"#, "a ratio in [0, 1]"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "range": [0.9, 0.1]}]}"#, "low must not exceed high"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}, {"id": "a", "metric": "fpr", "max": 0.1}]}"#, "used twice"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min": 0.1, "thresh": 1}]}"#, "unknown key 'thresh'"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "bootstrap": {"replicates": 5}, "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}]}"#, "bootstrap replicates in [100, 100000]"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "bootstrap": {"replicates": 100.5}, "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}]}"#, "100.5 is not"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "confidence": 1, "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}]}"#, "confidence level"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "view": "sex", "min_rows": -1}]}"#, "a row count"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min_rows": 10, "view": "sex"}]}"#, "takes no metric"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}], "non_inferiority": [{"id": "n", "metric": "prevalence", "margin": 0.1}]}"#, "better direction"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}], "allowed_changes": ["anything"]}"#, "not a change type"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t\u0007", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}]}"#, "control character"),
        (#"[1, 2]"#, "a validation plan is a JSON object"),
        (#"{"schema": "vigil.validation_plan/1", "name": "t", "version": "1", "group_fields": ["sex"], "criteria": [{"id": "a", "metric": "tpr", "min": 0.1}"#, "not valid JSON"),
    ]

    @Test(arguments: badPlans)
    func aMalformedPlanIsRefusedNamingThePlace(text: String, message: String) throws {
        #expect {
            _ = try ValidationPlan.load(data: Data(text.utf8), file: "plan.json")
        } throws: { e in
            guard let v = e as? VigilError else { return false }
            if !(v.message.contains(message) && v.message.contains("plan.json")) { Issue.record("\(v.message)") }
            return v.kind == .usage
        }
    }

    @Test func theShippedSepsisPlanReads() throws {
        let p = try ValidationPlan.load(path: Fixtures.repositoryRoot.appendingPathComponent("models/plans/sepsis-monthly.json").path)
        #expect(p.groupFields == ["sex", "age_band"] && p.cluster == "patient_id" && p.criteria.count >= 5)
        #expect(p.sha256.count == 64)
    }
}
