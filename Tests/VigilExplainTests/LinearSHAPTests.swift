import Foundation
import Testing
import VigilCore
import VigilEngine
import VigilFormats
import VigilExplain
import VigilTesting

/// Linear SHAP against shap's `LinearExplainer` (Tests/Fixtures/attribution/README.md), and its
/// contract: base + Σ contributions = the margin, E[x] from the manifest means (0 without them).
struct LinearSHAPTests {
    static func explain(_ model: VigilModel, _ batch: RowBatch) throws -> [Double] {
        try model.explain(batch.features, rows: batch.count)
    }

    static func readAll(_ model: VigilModel, _ url: URL) throws -> RowBatch {
        let reader = try CohortReader(url: url, model: model)
        return try #require(try reader.nextBatch(maxRows: 100_000))
    }

    /// Vigil's rows against a shap table keyed by id (`<features...>,bias` or `c<k>_...`).
    static func compare(_ model: VigilModel, _ batch: RowBatch, reference url: URL) throws -> Double {
        let table = try FixtureTable(contentsOf: url)
        let ours = try explain(model, batch)
        let stride = try model.explainer.get().rowStride
        #expect(table.header.count == stride + 1)
        let rowOf = Dictionary(uniqueKeysWithValues: batch.ids.enumerated().map { ($1, $0) })
        var worst = 0.0
        for fields in table.rows {
            let r = try #require(rowOf[fields[0]], "id \(fields[0]) is scored")
            let reference = fields.dropFirst().map { Double($0)! }
            worst = max(worst, maxAbsDifference(Array(ours[(r * stride)..<((r + 1) * stride)]), reference))
        }
        #expect(table.rows.count >= 60)
        return worst
    }

    @Test func theReadmissionModelEqualsShapsLinearExplainer() throws {
        let url = Fixtures.repositoryRoot.appendingPathComponent("models/readmission")
        let model = try VigilModel.load(path: url.path)
        let explainer = try model.explainer.get()
        #expect(explainer.method == .linearSHAP && explainer.space == .logOdds)
        #expect(explainer.warnings.isEmpty, "every feature has a manifest mean")
        let batch = try Self.readAll(model, url.appendingPathComponent("test_cohort.csv"))
        let d = try Self.compare(model, batch, reference: Fixtures.url("attribution/readmission_linear/shap_linear.csv"))
        // Both are one product per feature in Double; shap's background mean differs from the
        // manifest mean by ≤ 1.4e-13 (the shifted background's rounding).
        #expect(d <= 1e-9, "max |Vigil - shap| = \(d)")
    }

    @Test func aMulticlassModelEqualsShapPerClass() throws {
        let dir = Fixtures.url("attribution/heart_multiclass_linear")
        let model = try VigilModel.load(path: dir.path)
        #expect(model.ir.outputCount == 3)
        let explainer = try model.explainer.get()
        #expect(explainer.space == .margin && explainer.warnings.isEmpty)
        let batch = try Self.readAll(model, dir.appendingPathComponent("input.csv"))
        let d = try Self.compare(model, batch, reference: dir.appendingPathComponent("shap_linear.csv"))
        #expect(d <= 1e-9, "max |Vigil - shap| = \(d)")
    }

    /// base + Σ φ = the BLAS margin, on every linear fixture, with the manifest-free E[x] = 0 and
    /// with arbitrary means.
    @Test(arguments: Fixtures.cases("linear"))
    func contributionsAddUpToTheMargin(caseName: String) throws {
        let dir = Fixtures.url(caseName)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        let modelFile = try #require(files.first { $0.hasPrefix("model.") })
        let (ir, _) = try ModelFileLoader.load(data: try Data(contentsOf: dir.appendingPathComponent(modelFile)), fileName: modelFile)
        let (_, x) = try FixtureTable(contentsOf: dir.appendingPathComponent("input.csv")).featureMatrix()
        let f = ir.featureCount, k = ir.outputCount
        let rows = x.count / f
        var margins = [Double](repeating: 0, count: rows * k)
        x.withUnsafeBufferPointer { xp in margins.withUnsafeMutableBufferPointer { ir.predictRaw(xp.baseAddress!, rows: rows, into: $0.baseAddress!) } }
        for means in [nil, (0..<f).map { Double($0) * 1.5 - 3 }] as [[Double]?] {
            let e = try Explainer(model: ir, means: means)
            #expect(e.warnings.isEmpty == (means != nil))
            var out = [Double](repeating: .nan, count: rows * e.rowStride)
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { e.explain(xp.baseAddress!, rows: rows, into: $0.baseAddress!) } }
            for r in 0..<rows {
                for c in 0..<k {
                    let block = out[((r * k + c) * (f + 1))..<((r * k + c + 1) * (f + 1))]
                    let margin = margins[r * k + c]
                    #expect(abs(block.reduce(0, +) - margin) <= 1e-9 * max(1, abs(margin)), "\(caseName) row \(r)")
                }
            }
        }
    }

    @Test func withoutMeansTheBaseIsTheInterceptAndAWarningSaysSo() throws {
        let file = Fixtures.url("linear/json/model.linear.json")
        let model = try VigilModel.load(path: file.path)  // a bare model file: no manifest
        let explainer = try model.explainer.get()
        #expect(explainer.warnings.count == 1)
        #expect(explainer.warnings[0].contains("E[x] = 0"))
        guard case .linear(let linear) = model.ir else { Issue.record("not linear"); return }
        #expect(explainer.base == linear.intercepts)
        let row = (0..<linear.featureCount).map { Double($0) + 0.5 }
        let out = try model.explain(row, rows: 1)
        for j in 0..<linear.featureCount { #expect(out[j] == linear.weights[j] * row[j]) }
    }

    @Test func featuresWithoutAMeanAreNamed() throws {
        var b = LinearModelBuilder(featureCount: 3, objective: .binaryLogistic(scale: 1), featureNames: ["a", "b", "c"])
        b.addOutput(coefficients: [1, 2, 3], intercept: 0.5)
        let e = try Explainer(model: .linear(try b.build()), means: [1, nil, 2])
        #expect(e.warnings.count == 1 && e.warnings[0].contains("for b"))
        let expectedBase: Double = 1 * 1 + 3 * 2 + 0.5
        #expect(e.base == [expectedBase])
        #expect(throws: VigilError.self) { _ = try Explainer(model: .linear(try b.build()), means: [1, 2]) }
    }
}
