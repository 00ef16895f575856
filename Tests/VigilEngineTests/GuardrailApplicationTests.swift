import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Groups and thresholds in every record: exact boundaries, unseen groups, small groups.
struct GuardrailApplicationTests {
    @Test func binsAreClosedOnTheLeft() throws {
        let bins = try GroupField.Bins(edges: [40, 60], labels: ["<40", "40-59", "60+"])
        #expect(bins.label(39.999) == "<40")
        #expect(bins.label(40) == "40-59")
        #expect(bins.label(60) == "60+")
        let g = GroupField(name: "age_band", source: .feature, field: "age", missingLabel: "Unknown", bins: bins)
        #expect(g.label(value: .nan) == "Unknown")
    }

    @Test func mapsUseOtherAndMissingLabels() {
        let g = GroupField(name: "race", source: .field, field: "race", map: ["Caucasian": "White"], other: "Other", missingLabel: "Unknown")
        #expect(g.label(raw: "Caucasian") == "White")
        #expect(g.label(raw: "Martian") == "Other")
        #expect(g.label(raw: "?") == "Unknown")
        #expect(g.label(raw: nil) == "Unknown")
        let numeric = GroupField(name: "sex", source: .feature, field: "Gender", map: ["0": "Female", "1": "Male"])
        #expect(numeric.label(value: 0) == "Female" && numeric.label(value: 1.0) == "Male")
    }

    func policy(groups: [String: GuardrailPolicy.GroupEntry], min: Int = 30) throws -> GuardrailPolicy {
        try GuardrailPolicy(
            version: "t", sha256: "", constraint: "tpr_parity", objective: "balanced_accuracy", rule: "test",
            groupFields: ["sex"], minGroupSize: min, groups: groups, fallbackThreshold: 0.3, fittedRows: 100, fittedSHA256: nil)
    }

    @Test func aRiskExactlyAtTheThresholdIsPositive() {
        #expect(GuardrailPolicy.decide(risk: 0.25, threshold: 0.25))
        #expect(!GuardrailPolicy.decide(risk: 0.25.nextDown, threshold: 0.25))
    }

    @Test func groupsGetTheirThresholdAndOthersTheFallback() throws {
        let p = try policy(groups: ["Female": .init(threshold: 0.2, n: 50), "Male": .init(threshold: 0.4, n: 10)])
        #expect(p.threshold(forKey: "Female") == (0.2, .group("Female")))
        let small = p.threshold(forKey: "Male")
        #expect(small.threshold == 0.3)
        guard case .fallback(let reason) = small.source else { Issue.record("expected fallback"); return }
        #expect(reason.contains("below the minimum of 30"))
        let unseen = p.threshold(forKey: "Unknown")
        guard case .fallback(let why) = unseen.source else { Issue.record("expected fallback"); return }
        #expect(unseen.threshold == 0.3 && why.contains("not seen"))
    }

    @Test func thresholdsOutsideZeroOneAreRefused() {
        #expect(throws: VigilError.self) { _ = try policy(groups: ["A": .init(threshold: 1.5, n: 50)]) }
    }

    @Test func recordsCarryRangeWarningsAndTheFallbackReason() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Fixtures.repositoryRoot.appendingPathComponent("models/readmission"))
        // A policy by sex with one fitted group: Male rows get the fallback and say why.
        let policyJSON = """
            {"schema": "vigil.policy/1", "version": "test-2", "constraint": {"kind": "tpr_parity"},
             "objective": {"kind": "balanced_accuracy"}, "rule": "test", "group_fields": ["sex"],
             "min_group_size": 10, "groups": {"Female": {"threshold": 0.2, "n": 100}},
             "fallback": {"threshold": 0.15}, "fitted_on": {"rows": 100, "sha256": "00"}}
            """
        try dir.write("policy.json", policyJSON)
        let model = try VigilModel.load(path: dir.url.path)
        let reader = try CohortReader(url: dir.file("test_cohort.csv"), model: model)
        var batch = try #require(try reader.nextBatch(maxRows: 200))
        let time = try #require(model.schema.index(of: "time_in_hospital"))
        batch.features[time] = 99
        let records = try model.score(batch)
        #expect(records[0].warnings.contains { $0.contains("time_in_hospital=99 is outside the valid range") })
        let sexSlot = try #require(model.fieldGroups.firstIndex { $0.name == "sex" })
        for (i, r) in records.enumerated() {
            let raw = batch.groupRaw[i * model.fieldGroups.count + sexSlot]
            if raw == "Female" {
                #expect(r.threshold == 0.2 && r.thresholdSource == .group("Female") && r.groupKey == "Female")
            } else {
                #expect(r.threshold == 0.15 && r.thresholdSource?.label == "fallback")
                #expect(r.warnings.contains { $0.contains("fallback threshold 0.15") })
            }
            #expect(r.decision == (r.outputs[0] >= r.threshold!))
        }
    }

    @Test func aLinearModelRefusesAMissingValueNamingIt() throws {
        let model = try VigilModel.load(path: Fixtures.repositoryRoot.appendingPathComponent("models/readmission").path)
        var features = [Double](repeating: 1, count: model.schema.count)
        features[2] = .nan
        let batch = RowBatch(count: 1, ids: ["a"], features: features, groupRaw: Array(repeating: nil, count: model.fieldGroups.count), origins: ["request"])
        let error = #expect(throws: VigilError.self) { _ = try model.score(batch) }
        #expect(error?.message.contains("field '\(model.schema.names[2])'") == true)
        #expect(error?.message.contains("does not impute") == true)
    }
}

/// A batch built by an embedding program with the wrong shape is refused, not trapped on.
struct RowBatchShapeTests {
    @Test func aMisshapedBatchThrows() throws {
        let model = try VigilModel.load(path: Fixtures.url("lightgbm/heart_binary/model.txt").path)
        let batch = RowBatch(count: 2, ids: ["a", "b"], features: [1, 2, 3], groupRaw: [], origins: ["x", "y"])
        let error = #expect(throws: VigilError.self) { _ = try model.score(batch) }
        #expect(error?.message.contains("needs 26 feature values") == true)
    }
}

/// A group map keyed by numbers reads numbers as numbers: `1.0`, `1` and `1e0` are one code
/// (Cleveland writes sex as 1.0 where the other heart-disease sites write 1); other text is
/// matched as written.
struct NumericGroupValueTests {
    @Test func numericRawValuesFindTheirMappedLabel() {
        let g = GroupField(name: "sex", source: .field, field: "sex", map: ["1": "Male", "0": "Female", "07": "Site seven"], other: "Other")
        #expect(g.label(raw: "1.0") == "Male" && g.label(raw: "1") == "Male" && g.label(raw: "1e0") == "Male")
        #expect(g.label(raw: "0.0") == "Female" && g.label(raw: "-0") == "Female")
        #expect(g.label(raw: "07") == "Site seven" && g.label(raw: "7") == "Site seven")
        #expect(g.label(raw: "2") == "Other" && g.label(raw: "inf") == "Other" && g.label(raw: "0x1") == "Other")
        let unmapped = GroupField(name: "site", source: .field, field: "site")
        #expect(unmapped.label(raw: "1.0") == "1.0", "without a map the raw text is the label, as before")
    }
}
