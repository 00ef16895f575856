import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Attributions in prediction records: present only when asked, in margin space, base + Σ
/// contributions = the margin behind the record's risk, missing inputs shown as missing.
struct AttributionRecordTests {
    static func logit(_ p: Double) -> Double { log(p / (1 - p)) }

    @Test func recordsCarryAttributionsOnlyWhenAsked() throws {
        let url = Fixtures.repositoryRoot.appendingPathComponent("models/readmission")
        let model = try VigilModel.load(path: url.path)
        let reader = try CohortReader(url: url.appendingPathComponent("test_cohort.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxRows: 300))
        #expect(try model.score(batch).allSatisfy { $0.attribution == nil })
        let records = try model.score(batch, explain: true)
        for (r, record) in records.enumerated() {
            let a = try #require(record.attribution)
            #expect(a.method == .linearSHAP && a.space == .logOdds && a.outputCount == 1)
            #expect(a.values == Array(batch.features[(r * a.featureCount)..<((r + 1) * a.featureCount)]))
            let margin = a.base[0] + a.contributions.reduce(0, +)
            #expect(abs(margin - Self.logit(record.outputs[0])) <= 1e-9)
        }
    }

    @Test func missingInputsStayMissingInTheRecord() throws {
        let dir = Fixtures.url("xgboost/heart_binary")
        let model = try VigilModel.load(path: dir.appendingPathComponent("model.json").path)
        let reader = try CohortReader(url: dir.appendingPathComponent("input.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxRows: 1000))
        let records = try model.score(batch, explain: true)
        let allMissing = try #require(records.first { $0.id == "e001-allnan" })
        let a = try #require(allMissing.attribution)
        #expect(a.values.allSatisfy { $0.isNaN })
        #expect(a.space == .logOdds && a.method == .treeSHAP)
        var missingSeen = 0
        for record in records {
            let a = try #require(record.attribution)
            missingSeen += a.values.filter(\.isNaN).count
            // XGBoost's margin is a float32 sum; the exact sum of the same leaves is within its rounding.
            #expect(abs(a.base[0] + a.contributions.reduce(0, +) - Self.logit(record.outputs[0])) <= 1e-5)
        }
        #expect(missingSeen > 100)
    }

    @Test func aTreeModelWithoutCoversScoresButCannotBeExplained() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let text = try String(contentsOf: Fixtures.url("lightgbm/stumps/model.txt"), encoding: .utf8)
        let stripped = text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("internal_count=") && !$0.hasPrefix("leaf_count=") }.joined(separator: "\n")
        let file = try dir.write("model.txt", stripped)
        let model = try VigilModel.load(path: file.path)
        let batch = RowBatch(count: 1, ids: ["a"], features: Array(repeating: 1, count: model.schema.count), groupRaw: [], origins: ["test"])
        #expect(try model.score(batch).count == 1)
        let error = #expect(throws: VigilError.self) { _ = try model.score(batch, explain: true) }
        #expect(error?.message.contains("records no covers") == true)
    }
}
