import Foundation
import Testing
import VigilCore
import VigilFormats
import VigilTesting

/// Every fixture case: Vigil's margins and outputs against the producing library's own
/// (Tests/Fixtures/README.md). Tolerances are the engine core issue's: ≤ 1e-6 in probability for
/// trees, ≤ 1e-9 for logistic regression in float64.
struct ReferenceConformanceTests {
    struct Result {
        var raw: [Double]
        var out: [Double]
        var k: Int
        /// LightGBM's `raw_score` for an `average_output` model is the unaveraged sum; Vigil's
        /// margin is the value the link is applied to (the average).
        var divisor: Double
    }

    static func run(_ caseName: String) throws -> (Result, FixtureTable, ModelFormat) {
        let dir = Fixtures.url(caseName)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        guard let modelFile = files.first(where: { $0.hasPrefix("model.") }) else {
            throw VigilError(.io, "\(caseName): no model file")
        }
        let data = try Data(contentsOf: dir.appendingPathComponent(modelFile))
        let (model, format) = try ModelFileLoader.load(data: data, fileName: modelFile)
        let input = try FixtureTable(contentsOf: dir.appendingPathComponent("input.csv"))
        let (names, x) = input.featureMatrix()
        #expect(names.count == model.featureCount, "\(caseName): input has \(names.count) features, model \(model.featureCount)")
        if let modelNames = model.featureNames { #expect(modelNames == names, "\(caseName): feature names differ") }
        let rows = input.rows.count
        let k = model.outputCount
        var raw = [Double](repeating: .nan, count: rows * k)
        x.withUnsafeBufferPointer { xp in
            raw.withUnsafeMutableBufferPointer { model.predictRaw(xp.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        if case .trees(let ensemble) = model {
            // The blocked traversal kernel is bit-identical to its one-row-at-a-time twin.
            var reference = [Double](repeating: .nan, count: rows * k)
            x.withUnsafeBufferPointer { xp in
                reference.withUnsafeMutableBufferPointer { ensemble.predictRawReference(xp.baseAddress!, rows: rows, into: $0.baseAddress!) }
            }
            #expect(reference == raw, "\(caseName): blocked and reference traversal differ")
            // One row per call takes the per-row kernel, as single-row scoring does.
            var single = [Double](repeating: .nan, count: rows * k)
            let f = model.featureCount
            x.withUnsafeBufferPointer { xp in
                single.withUnsafeMutableBufferPointer { op in
                    for r in 0..<rows { ensemble.predictRaw(xp.baseAddress! + r * f, rows: 1, into: op.baseAddress! + r * k) }
                }
            }
            #expect(reference == single, "\(caseName): one-row and reference traversal differ")
        }
        var out = raw
        out.withUnsafeMutableBufferPointer { model.transform($0.baseAddress!, rows: rows) }
        let expected = try FixtureTable(contentsOf: dir.appendingPathComponent("expected.csv"))
        #expect(expected.rows.count == rows)
        var divisor = 1.0
        if case .trees(let m) = model { divisor = m.divisor }
        return (Result(raw: raw, out: out, k: k, divisor: divisor), expected, format)
    }

    static func column(_ values: [Double], k: Int, _ c: Int) -> [Double] {
        stride(from: c, to: values.count, by: k).map { values[$0] }
    }

    @Test(arguments: Fixtures.cases("lightgbm") + Fixtures.cases("xgboost"))
    func treeModelsEqualTheirLibrary(caseName: String) throws {
        let (r, expected, _) = try Self.run(caseName)
        if r.k == 1 {
            let risk = try #require(expected.doubles("risk"))
            let dRisk = maxAbsDifference(r.out, risk)
            #expect(dRisk <= 1e-6, "\(caseName): max |risk - library| = \(dRisk)")
            let raw = try #require(expected.doubles("raw")).map { $0 / r.divisor }
            let dRaw = maxAbsDifference(r.raw, raw)
            // Margins are summed as each library sums them (LightGBM in double, XGBoost in float32).
            #expect(dRaw <= 1e-9 * max(1, raw.map(abs).max() ?? 1), "\(caseName): max |raw - library| = \(dRaw)")
        } else {
            for c in 0..<r.k {
                let risk = try #require(expected.doubles("risk_\(c)"))
                let d = maxAbsDifference(Self.column(r.out, k: r.k, c), risk)
                #expect(d <= 1e-6, "\(caseName): class \(c) max |risk - library| = \(d)")
            }
        }
    }

    @Test(arguments: Fixtures.cases("linear"))
    func linearModelsEqualTheirLibrary(caseName: String) throws {
        let (r, expected, _) = try Self.run(caseName)
        // Float32 coefficients: compare with the float64 evaluation of exactly those coefficients
        // (what the file stores); float64 models: with scikit-learn's predict_proba.
        if let f32 = expected.doubles("risk_f32coef") {
            let d = maxAbsDifference(r.out, f32)
            #expect(d <= 1e-9, "\(caseName): max |risk - float64 eval of the file's float32 coefficients| = \(d)")
            if let ort = expected.doubles("risk") {
                // onnxruntime evaluates in float32: its own rounding, ~1e-7.
                #expect(maxAbsDifference(r.out, ort) <= 1e-6, "\(caseName): vs onnxruntime")
            }
        } else {
            let risk = try #require(expected.doubles("risk"))
            let d = maxAbsDifference(r.out, risk)
            #expect(d <= 1e-9, "\(caseName): max |risk - scikit-learn| = \(d)")
            if let raw = expected.doubles("raw") {
                #expect(maxAbsDifference(r.raw, raw) <= 1e-9 * max(1, raw.map(abs).max() ?? 1), "\(caseName): margins")
            }
        }
    }
}
