import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Image records go through the same guardrail step as tabular ones (`policy.resolve`), so a
/// randomized policy's seeded draw applies to them too (docs/FORMATS.md).
struct ImageThresholdTests {
    /// The retinopathy package with a randomized policy on its `site` group: the test cohort has
    /// no `site` column, so every image lands in `Unknown`, whose entry has a 50% mixture.
    static let policy = """
        {"schema": "vigil.policy/1", "version": "r", "constraint": {"kind": "tpr_parity"}, "objective": {"kind": "balanced_accuracy"},
         "rule": "t", "group_fields": ["site"], "min_group_size": 0, "randomized": {"seed": 11},
         "groups": {"Unknown": {"threshold": 0.4, "n": 500, "mixture": {"threshold": 0.6, "probability": 0.5}}},
         "fallback": {"threshold": 0.3}, "fitted_on": {"rows": 500, "sha256": "00"}}
        """

    @Test func aRandomizedPolicyDrawsImageThresholdsAsItDrawsTabularOnes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy"))
        try dir.write("policy.json", Self.policy)
        let model = try VigilModel.load(path: dir.url.path)
        #expect(model.policy.randomizationSeed == 11)
        let reader = try ImageCohortReader(url: dir.file("test_cohort.csv"), model: model)
        var records: [PredictionRecord] = []
        while let b = try reader.nextBatch(maxImages: 64) { records += try model.score(b) }
        #expect(records.count == 100)
        for r in records {
            // The tabular path's resolution for the same key and record id.
            let expected = model.policy.resolve(key: "Unknown", recordID: r.id)
            #expect(r.groupKey == "Unknown")
            #expect(r.randomized, "record \(r.id) is flagged as randomized")
            #expect(r.threshold == expected.threshold, "record \(r.id): \(String(describing: r.threshold)) vs \(expected.threshold)")
            #expect(r.thresholdSource == .group("Unknown"))
            #expect(r.decision == (r.outputs[0] >= expected.threshold))
        }
        // Both thresholds of the mixture are drawn (the old image path only ever gave 0.4).
        #expect(Set(records.compactMap(\.threshold)) == [0.4, 0.6])
        // The JSON Lines record says so, as a tabular one does.
        let out = dir.file("out.jsonl")
        try RecordWriter(model: model, output: out, format: .jsonl).write(Array(records.prefix(1)))
        #expect(try String(contentsOf: out, encoding: .utf8).contains("\"threshold_randomized\":true"))
    }
}
