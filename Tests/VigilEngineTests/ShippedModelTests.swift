import Foundation
import Testing
import VigilEngine
import VigilTesting

/// The shipped packages (models/): each loads, its manifest's SHA-256 matches the model file,
/// and Vigil's scores on the committed test cohort equal the training library's own
/// (`reference_risk`, written by models/training/*.py).
struct ShippedModelTests {
    static let tabular: [(name: String, tolerance: Double)] = [("readmission", 1e-9), ("sepsis", 1e-6), ("readmission-xgb", 1e-6)]

    static func packageURL(_ name: String) -> URL { Fixtures.repositoryRoot.appendingPathComponent("models/\(name)") }

    @Test(arguments: tabular.map(\.name))
    func scoresEqualTheTrainingLibrary(name: String) throws {
        let tolerance = Self.tabular.first { $0.name == name }!.tolerance
        let url = Self.packageURL(name)
        let model = try VigilModel.load(path: url.path)
        let manifest = try #require(model.manifest)
        let digest = try SHA256Digest.hex(ofFileAt: url.appendingPathComponent(manifest.modelFile))
        #expect(digest == manifest.modelSHA256)
        let cohort = url.appendingPathComponent("test_cohort.csv")
        let reader = try CohortReader(url: cohort, model: model)
        var risks: [Double] = []
        var ids: [String] = []
        while let batch = try reader.nextBatch(maxRows: 1000) {
            let records = try model.score(batch)
            risks += records.map { $0.outputs[0] }
            ids += records.map(\.id)
            // Each record gets what the package's policy gives its group (its own or the fallback).
            #expect(records.allSatisfy { $0.decision != nil && $0.threshold == model.policy.resolve(key: $0.groupKey, recordID: $0.id).threshold })
        }
        let table = try FixtureTable(contentsOf: cohort)
        let reference = try #require(table.doubles("reference_risk"))
        #expect(risks.count == reference.count && risks.count > 100)
        let d = maxAbsDifference(risks, reference)
        #expect(d <= tolerance, "\(name): max |Vigil - training library| = \(d)")
        let idColumn = try #require(table.column(model.idField))
        #expect(ids == table.rows.map { $0[idColumn] })
    }

    @Test(arguments: tabular.map(\.name))
    func everyRowGetsAGroupForEveryGroupField(name: String) throws {
        let model = try VigilModel.load(path: Self.packageURL(name).path)
        #expect(!model.groups.isEmpty)
        let reader = try CohortReader(url: Self.packageURL(name).appendingPathComponent("test_cohort.csv"), model: model)
        let records = try model.score(try #require(try reader.nextBatch(maxRows: 500)))
        for r in records {
            #expect(r.groupLabels.count == model.groups.count)
            #expect(r.groupLabels.allSatisfy { !$0.isEmpty })
        }
    }
}
