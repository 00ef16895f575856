import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Edges of fitting and applying group thresholds: a risk exactly at a threshold, groups never
/// seen or too small at fitting, groups without positives, one-class cohorts, intersections and
/// randomized mixtures.
struct FairnessBoundaryTests {
    /// A temporary copy of the readmission package with `policy` as its policy.json.
    func package(policy: String) throws -> (TemporaryDirectory, VigilModel) {
        let dir = try TemporaryDirectory()
        try dir.copyContents(of: Fixtures.repositoryRoot.appendingPathComponent("models/readmission"))
        try dir.write("policy.json", policy)
        return (dir, try VigilModel.load(path: dir.url.path))
    }

    @Test func aRiskExactlyAtAFittedThresholdIsDecidedPositive() throws {
        let risks = [0.1, 0.2, 0.3, 0.3, 0.4, 0.6, 0.2, 0.5, 0.7, 0.9]
        let labels = [false, false, true, false, true, true, false, false, true, true]
        let keys = Array(repeating: "A", count: 5) + Array(repeating: "B", count: 5)
        let fit = try ThresholdFitter.fit(risks: risks, labels: labels, groupKeys: keys,
                                          options: .init(constraint: .none, objective: .accuracy))
        for g in fit.groups {
            // Fitted thresholds sit halfway between neighbouring risks of the group, so the
            // fitting rows decide the same way whichever side of an ulp their risk lands.
            let rows = keys.indices.filter { keys[$0] == g.key }
            let selected = rows.filter { GuardrailPolicy.decide(risk: risks[$0], threshold: g.threshold) }.count
            #expect(Double(selected) / Double(rows.count) == g.selectionRate)
            #expect(rows.allSatisfy { abs(risks[$0] - g.threshold) > 1e-3 } || g.threshold == rows.map { risks[$0] }.min()!)
        }
        // A risk exactly at a threshold is positive, at serving as in fitting.
        let policy = try GuardrailPolicy.load(data: Data(fit.policyJSON(groupFields: ["g"], provenance: .init(file: "f", sha256: "0", labelColumn: "y", scores: "s", version: "1")).text().utf8))
        for g in fit.groups {
            let t = policy.resolve(key: g.key, recordID: "r").threshold
            #expect(GuardrailPolicy.decide(risk: t, threshold: t) && !GuardrailPolicy.decide(risk: t.nextDown, threshold: t))
        }
        let curve = OperatingCurve(risks: [0.2, 0.9, 0.9, 0.5], labels: [false, true, false, true])
        #expect(curve.thresholds == [0.95, 0.7, 0.35, 0.2] && curve.tp == [0, 1, 2, 2] && curve.fp == [0, 1, 1, 2])
        #expect(curve.index(ofThreshold: 0.9) == 1 && curve.index(ofThreshold: 0.5) == 2 && curve.index(ofThreshold: 0.45) == 2)
        #expect(curve.index(ofThreshold: 0.1) == 3 && curve.index(ofThreshold: 0.95) == 0)
        // Adjacent doubles have no midpoint: the threshold is the risk itself.
        #expect(OperatingCurve(risks: [0.5, 0.5.nextDown], labels: [true, false]).thresholds[1] == 0.5)
        // A group whose largest risk is 1 has no "select none" point.
        #expect(OperatingCurve(risks: [1.0], labels: [true]).thresholds == [1.0])
    }

    @Test func anUnseenGroupGetsTheFallbackWithAWarning() throws {
        let (dir, model) = try package(policy: """
            {"schema": "vigil.policy/1", "version": "t", "constraint": {"kind": "tpr_parity"}, "objective": {"kind": "balanced_accuracy"},
             "rule": "t", "group_fields": ["sex"], "min_group_size": 10,
             "groups": {"Female": {"threshold": 0.2, "n": 500}, "Male": {"threshold": 0.1, "n": 500}},
             "fallback": {"threshold": 0.15}, "fitted_on": {"rows": 1000, "sha256": "00"}}
            """)
        defer { dir.remove() }
        var features = [Double](repeating: 0, count: model.schema.count)
        features[0] = 65
        features[1] = 3
        let raw: [String?] = model.fieldGroups.map { $0.name == "sex" ? "Unknown/Invalid" : "Caucasian" }
        let rec = try model.score(RowBatch(count: 1, ids: ["p1"], features: features, groupRaw: raw, origins: ["test"]))[0]
        #expect(rec.groupKey == "Unknown")
        #expect(rec.threshold == 0.15 && rec.thresholdSource?.label == "fallback")
        #expect(rec.warnings.contains { $0.contains("fallback threshold 0.15") && $0.contains("not seen") })
        #expect(!rec.randomized)
    }

    @Test func aGroupBelowTheMinimumSizeTakesTheFallback() throws {
        let c = FairnessFixtures.cohort
        let fit = try ThresholdFitter.fit(risks: c.risks, labels: c.labels, groupKeys: c.race,
                                          options: .init(constraint: .tprParity, objective: .balancedAccuracy, tolerance: 0.05, minGroupSize: 40))
        let other = try #require(fit.groups.first { $0.key == "Other" })  // 19 rows
        #expect(other.n < 40 && !other.constrained && other.threshold == fit.fallbackThreshold)
        #expect(fit.notes.contains { $0.contains("'Other'") && $0.contains("below the minimum of 40") })
        let policy = try GuardrailPolicy.load(data: Data(fit.policyJSON(groupFields: ["race"], provenance: .init(file: "c", sha256: "0", labelColumn: "label", scores: "s", version: "1")).text().utf8))
        let r = policy.resolve(key: "Other", recordID: "1")
        guard case .fallback(let reason) = r.source else { Issue.record("expected a fallback"); return }
        #expect(reason.contains("below the minimum of 40"))
        #expect(policy.resolve(key: "White", recordID: "1").source == .group("White"))
    }

    @Test func aGroupWithoutPositivesIsFlaggedNotGivenAMadeUpThreshold() throws {
        let c = FairnessFixtures.cohort
        let fit = try ThresholdFitter.fit(risks: c.risks, labels: c.labels, groupKeys: c.race,
                                          options: .init(constraint: .tprParity, objective: .balancedAccuracy, tolerance: 0.05, minGroupSize: 0))
        let asian = try #require(fit.groups.first { $0.key == "Asian" })  // 13 rows, no positives
        #expect(asian.positives == 0 && asian.tpr == nil && !asian.constrained)
        #expect(asian.fallbackReason?.contains("no positive labels") == true)
        let text = fit.policyJSON(groupFields: ["race"], provenance: .init(file: "c", sha256: "0", labelColumn: "label", scores: "s", version: "1")).text()
        #expect(text.contains("\"tpr\": null"))
        let policy = try GuardrailPolicy.load(data: Data(text.utf8))
        guard case .fallback(let reason) = policy.resolve(key: "Asian", recordID: "1").source else { Issue.record("expected a fallback"); return }
        #expect(reason.contains("no positive labels"))
    }

    @Test func aSingleClassCohortCannotBeFittedAndAuditsAsUndefined() throws {
        let risks = [0.1, 0.4, 0.3, 0.8]
        let error = #expect(throws: VigilError.self) {
            _ = try ThresholdFitter.fit(risks: risks, labels: [false, false, false, false], groupKeys: ["a", "a", "b", "b"],
                                        options: .init(constraint: .tprParity, objective: .balancedAccuracy))
        }
        #expect(error?.message.contains("both classes") == true)
        var options = FairnessAudit.Options()
        options.replicates = 10
        options.minGroupSize = 0
        let result = try FairnessAudit.run(try FairnessAudit.Data(
            risks: risks, labels: [false, false, false, false], decisions: risks.map { $0 >= 0.35 }, fields: ["g"],
            groupLabels: [["a", "a", "b", "b"]]), options: options)
        let o = result.overall.metrics
        #expect(o[.tpr]?.value == nil && o[.auroc]?.value == nil && o[.calibrationSlope]?.value == nil && o[.auprc]?.value == nil)
        #expect(o[.fpr]?.value == 0.5 && o[.selectionRate]?.value == 0.5)
        #expect(result.overall.intervals[.tpr] == nil)
        #expect(result.views[0].disparities[.tpr]?.differenceBetweenGroups.value == nil)
        #expect(result.views[0].disparities[.fpr]?.differenceBetweenGroups.value == 0)
    }

    /// The default reference group is the largest with positive labels: the largest group here
    /// has none, so every comparison against it would be undefined; a warning says which was taken.
    @Test func theDefaultReferenceIsTheLargestGroupWithPositives() throws {
        var risks: [Double] = [], labels: [Bool] = [], groups: [String] = []
        for i in 0..<60 { risks.append(Double(i % 10) / 10); labels.append(false); groups.append("big") }
        for i in 0..<40 { risks.append(Double(i % 10) / 10); labels.append(i % 3 == 0); groups.append("small") }
        var options = FairnessAudit.Options()
        options.replicates = 10
        options.minGroupSize = 10
        let result = try FairnessAudit.run(try FairnessAudit.Data(
            risks: risks, labels: labels, decisions: risks.map { $0 >= 0.5 }, fields: ["g"], groupLabels: [groups]), options: options)
        let view = try #require(result.views.first)
        #expect(view.reference == "small", "\(view.reference ?? "nil")")
        #expect(view.warnings.contains { $0.contains("the largest with positive labels") })
        options.references["g"] = "big"
        let chosen = try FairnessAudit.run(try FairnessAudit.Data(
            risks: risks, labels: labels, decisions: risks.map { $0 >= 0.5 }, fields: ["g"], groupLabels: [groups]), options: options)
        #expect(chosen.views.first?.reference == "big")
    }

    @Test func badOptionsAreRefusedNamingTheRule() {
        #expect(throws: VigilError.self) { _ = try FairnessConstraint(name: "min_sensitivity", target: nil) }
        #expect(throws: VigilError.self) { _ = try FairnessConstraint(name: "min_sensitivity", target: 1.5) }
        #expect(throws: VigilError.self) { _ = try FairnessConstraint(name: "parity", target: nil) }
        #expect(throws: VigilError.self) { _ = try FitObjective(name: "cost", costFN: 1, costFP: nil) }
        #expect(throws: VigilError.self) { _ = try FitObjective(name: "accuracy", costFN: 1, costFP: 1) }
        #expect(throws: VigilError.self) {
            _ = try ThresholdFitter.fit(risks: [0.2, 1.2], labels: [true, false], groupKeys: ["a", "a"], options: .init(constraint: .none, objective: .accuracy))
        }
        #expect(throws: VigilError.self) {
            _ = try ThresholdFitter.fit(risks: [0.2, 0.3], labels: [true, false], groupKeys: ["a", "a"], options: .init(constraint: .tprParity, objective: .accuracy, tolerance: -0.1))
        }
    }

    // MARK: - Intersections and randomized mixtures

    static let intersectionPolicy = """
        {"schema": "vigil.policy/1", "version": "x", "constraint": {"kind": "tpr_parity"}, "objective": {"kind": "balanced_accuracy"},
         "rule": "t", "group_fields": ["race", "sex"], "min_group_size": 0,
         "groups": {"White|Female": {"threshold": 0.11, "n": 700}, "White|Male": {"threshold": 0.12, "n": 700},
                    "Black|Female": {"threshold": 0.09, "n": 200}},
         "fallback": {"threshold": 0.1}, "fitted_on": {"rows": 1600, "sha256": "00"}}
        """

    @Test func intersectionsKeyRecordsByEveryGroupField() throws {
        let (dir, model) = try package(policy: Self.intersectionPolicy)
        defer { dir.remove() }
        let reader = try CohortReader(url: dir.file("test_cohort.csv"), model: model)
        let records = try model.score(try #require(try reader.nextBatch(maxRows: 400)))
        let race = model.groups.firstIndex { $0.name == "race" }!, sex = model.groups.firstIndex { $0.name == "sex" }!
        var seen = Set<String>()
        for r in records {
            let key = "\(r.groupLabels[race])|\(r.groupLabels[sex])"
            #expect(r.groupKey == key)
            seen.insert(key)
            switch key {
            case "White|Female": #expect(r.threshold == 0.11 && r.thresholdSource == .group(key))
            case "White|Male": #expect(r.threshold == 0.12)
            case "Black|Female": #expect(r.threshold == 0.09)
            default: #expect(r.threshold == 0.1 && r.thresholdSource?.label == "fallback")
            }
            #expect(r.decision == (r.outputs[0] >= r.threshold!))
        }
        #expect(seen.count >= 4)
        // A key with the wrong number of labels is refused.
        #expect(throws: VigilError.self) {
            _ = try GuardrailPolicy.load(data: Data(Self.intersectionPolicy.replacingOccurrences(of: "\"White|Male\"", with: "\"White\"").utf8))
        }
    }

    static func randomized(_ extra: String) -> String {
        """
        {"schema": "vigil.policy/1", "version": "r", "constraint": {"kind": "tpr_parity"}, "objective": {"kind": "balanced_accuracy"},
         "rule": "t", "group_fields": ["sex"], "min_group_size": 0, \(extra)
         "groups": {"Female": {"threshold": 0.2, "n": 500, "mixture": {"threshold": 0.1, "probability": 0.25}},
                    "Male": {"threshold": 0.15, "n": 500}},
         "fallback": {"threshold": 0.12}, "fitted_on": {"rows": 1000, "sha256": "00"}}
        """
    }

    @Test func randomizedMixturesAreSeededPerRecordIDAndFlagged() throws {
        let policy = try GuardrailPolicy.load(data: Data(Self.randomized("\"randomized\": {\"seed\": 42},").utf8))
        #expect(policy.randomizationSeed == 42)
        var low = 0
        for i in 0..<20000 {
            let r = policy.resolve(key: "Female", recordID: "enc-\(i)")
            #expect(r.randomized && r.source == .group("Female") && (r.threshold == 0.1 || r.threshold == 0.2))
            #expect(policy.resolve(key: "Female", recordID: "enc-\(i)") == r, "the same id always gets the same threshold")
            if r.threshold == 0.1 { low += 1 }
        }
        #expect(abs(Double(low) / 20000 - 0.25) < 0.015, "\(low) of 20000 drew the mixture threshold")
        // Groups without a mixture, and the fallback, stay deterministic.
        #expect(policy.resolve(key: "Male", recordID: "a") == .init(threshold: 0.15, source: .group("Male"), randomized: false))
        #expect(!policy.resolve(key: "Unknown", recordID: "a").randomized)
        // Another seed gives other draws.
        let other = try GuardrailPolicy.load(data: Data(Self.randomized("\"randomized\": {\"seed\": 43},").utf8))
        #expect((0..<200).contains { other.resolve(key: "Female", recordID: "enc-\($0)") != policy.resolve(key: "Female", recordID: "enc-\($0)") })
        #expect(MixtureDraw.unit(id: "enc-1", seed: 42) == MixtureDraw.unit(id: "enc-1", seed: 42))
    }

    @Test func mixturesNeedARandomizedPolicyWithASeed() {
        for extra in ["", "\"randomized\": false,", "\"randomized\": true,", "\"randomized\": {},", "\"randomized\": {\"seed\": -1},"] {
            #expect(throws: VigilError.self, "\(extra)") { _ = try GuardrailPolicy.load(data: Data(Self.randomized(extra).utf8)) }
        }
    }

    @Test func scoredRecordsOfARandomizedPolicySayWhichThresholdTheyDrew() throws {
        let (dir, model) = try package(policy: Self.randomized("\"randomized\": {\"seed\": 7},"))
        defer { dir.remove() }
        let reader = try CohortReader(url: dir.file("test_cohort.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxRows: 300))
        let a = try model.score(batch), b = try model.score(batch)
        for (x, y) in zip(a, b) {
            #expect(x.threshold == y.threshold && x.decision == y.decision)
            #expect(x.randomized == (x.groupKey == "Female"))
        }
        #expect(Set(a.filter { $0.groupKey == "Female" }.map(\.threshold)).count == 2)
        let out = dir.file("out.csv")
        let writer = try RecordWriter(model: model, output: out, format: .csv)
        try writer.write(a)
        let header = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")[0]
        #expect(header.hasSuffix("threshold,threshold_source,decision,threshold_randomized,warnings"))
    }
}
