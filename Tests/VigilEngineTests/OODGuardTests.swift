import Foundation
import Testing
import VigilEngine
import VigilTesting

/// The out-of-distribution guard against numpy, scipy and scikit-learn
/// (Tests/Fixtures/ood/make_ood_fixture.py): the fitted means, spreads, Ledoit-Wolf shrinkage and
/// Cholesky factor, the threshold, and every test row's marginal Mahalanobis score (missing
/// features integrated out) within 1e-9; the manifest block read strictly; records warned.
struct OODGuardTests {
    static let names = ["a", "b", "c", "d", "e", "f"]

    static func matrix(_ file: String) throws -> (values: [Double], rows: Int) {
        let t = try FixtureTable(contentsOf: Fixtures.url("ood/\(file)"))
        try #require(t.header == ["id"] + names)
        let m = t.featureMatrix()
        return (m.values, t.rows.count)
    }

    static func expected() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("ood/expected.json"))) as? [String: Any])
    }

    static func close(_ a: Double, _ b: Double, _ tol: Double = 1e-9) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

    static func fitted() throws -> OODReference {
        let train = try matrix("train.csv")
        return try OODReference.fit(names: names, quantile: 0.995) {
            var done = false
            return { defer { done = true }; return done ? nil : (train.values, train.rows) }
        }
    }

    @Test func fitEqualsNumpyScipyAndScikitLearn() throws {
        let ref = try Self.fitted()
        let e = try Self.expected()
        #expect(ref.rows == 400 && ref.features == Self.names)
        let mean = try #require(e["mean"] as? [Double]), scale = try #require(e["scale"] as? [Double])
        #expect(zip(ref.mean, mean).allSatisfy { Self.close($0, $1, 1e-12) }, "\(ref.mean) vs \(mean)")
        #expect(zip(ref.scale, scale).allSatisfy { Self.close($0, $1, 1e-12) }, "\(ref.scale) vs \(scale)")
        #expect(Self.close(ref.shrinkage, try #require(e["shrinkage"] as? Double)), "shrinkage \(ref.shrinkage)")
        let l = try #require(e["cholesky"] as? [[Double]])
        for i in 0..<6 { for j in 0...i { #expect(Self.close(ref.cholesky[i * 6 + j], l[i][j]), "L[\(i)][\(j)]") } }
        #expect(Self.close(ref.threshold, try #require(e["threshold"] as? Double)), "threshold \(ref.threshold)")
    }

    @Test func scoresEqualScipyOnEveryMissingnessPattern() throws {
        let ref = try Self.fitted()
        let schema = try FeatureSchema(Self.names.map { FeatureSpec(name: $0) })
        let guardian = try OODGuard(ref, schema: schema)
        let test = try Self.matrix("test.csv")
        let scores = guardian.scores(test.values, rows: test.rows, featureCount: 6)
        let want = try #require(Self.expected()["test_scores"] as? [Any])
        #expect(scores.count == 60 && want.count == 60)
        var patterns = Set<[Bool]>()
        for r in 0..<60 {
            patterns.insert((0..<6).map { test.values[r * 6 + $0].isNaN })
            if let w = want[r] as? Double {
                let s = try #require(scores[r], "row \(r)")
                #expect(Self.close(s, w), "row \(r): \(s) vs scipy \(w)")
            } else {
                #expect(scores[r] == nil, "row \(r) has nothing observed")
            }
        }
        #expect(patterns.count >= 10, "the fixture exercises \(patterns.count) missingness patterns")
        // The shifted rows (40-58) are flagged; at most a few of the 40 in-distribution ones.
        let flagged = (0..<60).filter { guardian.warning(scores[$0]) != nil }
        #expect(flagged.filter { $0 >= 40 }.count >= 17 && flagged.filter { $0 < 40 }.count <= 2, "\(flagged)")
    }

    @Test func theManifestBlockRoundTripsAndIsReadStrictly() throws {
        let ref = try Self.fitted()
        let back = try OODReference(try JSONNode.parse(Data(ref.json.utf8), file: "m"))
        #expect(back == ref)
        for (edit, rule) in [
            ({ (s: String) in s.replacingOccurrences(of: #""method": "mahalanobis-ledoit-wolf""#, with: #""method": "knn""#) }, "is not a method"),
            ({ (s: String) in s.replacingOccurrences(of: #""features": ["a", "b""#, with: #""features": ["a", "a""#) }, "appears twice"),
            ({ (s: String) in s.replacingOccurrences(of: #""quantile": 0.995"#, with: #""quantile": 1.5"#) }, "quantile in (0, 1)"),
            ({ (s: String) in s.replacingOccurrences(of: "\"cholesky\": [\n    [", with: "\"cholesky\": [\n    [-") }, "diagonal positive"),
            ({ (s: String) in s.replacingOccurrences(of: "\"scale\": [", with: "\"scale\": [0, ") }, "one value per feature"),
        ] {
            let text = edit(ref.json)
            #expect(text != ref.json, "\(rule): the edit applies")
            let error = #expect(throws: VigilError.self) { _ = try OODReference(try JSONNode.parse(Data(text.utf8), file: "m")) }
            #expect(error?.message.contains(rule) == true, "\(rule): \(error?.message ?? "")")
        }
    }

    /// A package carrying the reference warns the records of rows unlike its training rows.
    @Test func recordsOfDistantRowsCarryAnOODWarning() throws {
        let ref = try Self.fitted()
        let dir = try TemporaryDirectory("vigil-ood")
        defer { dir.remove() }
        let modelURL = try dir.write("model.linear.json", #"{"format": "vigil-linear", "version": 1, "link": "logistic", "features": ["a", "b", "c", "d", "e", "f"], "coefficients": [0.1, 0.1, 0.1, 0.1, 0.1, 0.1], "intercept": 0}"#)
        let sha = try SHA256Digest.hex(ofFileAt: modelURL)
        let features = Self.names.map { #"{"name": "\#($0)", "type": "numeric"}"# }.joined(separator: ", ")
        try dir.write("manifest.json", #"{"schema": "vigil.manifest/1", "name": "oodtoy", "version": "1", "task": "binary", "model": {"file": "model.linear.json", "format": "linear-json", "sha256": "\#(sha)"}, "features": [\#(features)], "reference": {"rows": 400, "ood": \#(ref.json)}}"#)
        let model = try VigilModel.load(path: dir.url.path)
        let test = try Self.matrix("test.csv")
        let rows = [0, 1, 45, 50]   // two in distribution (complete), two shifted
        var x: [Double] = []
        for r in rows { x += (0..<6).map { test.values[r * 6 + $0] }.map { $0.isNaN ? 0 : $0 } }
        let records = try model.score(RowBatch(count: 4, ids: ["0", "1", "45", "50"], features: x, groupRaw: [], origins: ["r0", "r1", "r45", "r50"]))
        let warned = records.map { $0.warnings.contains { $0.hasPrefix("ood: ") } }
        #expect(warned[2] && warned[3], "\(records.map(\.warnings))")
    }

    /// The shipped tabular packages carry a reference (models/training/add_ood.py) that flags at
    /// most 1% of their held-out test rows, and a row far from the training data.
    @Test(arguments: ["sepsis", "readmission"])
    func shippedPackagesFlagFewHeldOutRows(name: String) throws {
        let model = try VigilModel.load(path: Fixtures.repositoryRoot.appendingPathComponent("models/\(name)").path)
        let guardian = try #require(model.oodGuard, "models/\(name) carries reference.ood")
        #expect(guardian.reference.features.count == model.schema.count && guardian.reference.rows > 50_000)
        let reader = try CohortReader(url: Fixtures.repositoryRoot.appendingPathComponent("models/\(name)/test_cohort.csv"), model: model)
        var rows = 0, flagged = 0
        var far: RowBatch?
        while let batch = try reader.nextBatch(maxRows: 4096) {
            let records = try model.score(batch)
            rows += records.count
            flagged += records.filter { $0.warnings.contains { $0.hasPrefix("ood: ") } }.count
            if far == nil {
                var b = batch
                b.count = 1; b.ids = ["far"]; b.origins = ["far"]; b.groupRaw = Array(b.groupRaw.prefix(model.fieldGroups.count))
                b.features = Array(b.features.prefix(model.schema.count)).enumerated().map { j, v in
                    let ref = guardian.reference
                    guard let c = ref.features.firstIndex(of: model.schema.names[j]) else { return v }
                    return ref.mean[c] + 8 * ref.scale[c] * (j % 2 == 0 ? 1 : -1)
                }
                far = b
            }
        }
        #expect(rows >= 2000)
        #expect(Double(flagged) <= 0.01 * Double(rows), "\(name): \(flagged) of \(rows) held-out rows flagged")
        let farRecord = try model.score(try #require(far))
        #expect(farRecord[0].warnings.contains { $0.hasPrefix("ood: ") }, "\(farRecord[0].warnings)")
    }

    /// The retinopathy CNN's guard measures its penultimate layer's 64 activations: it flags
    /// every random-noise image and at least 95% of grayscale copies of the test images, and at
    /// most 5% of the committed test images themselves (3.25% of all 400 in the npz, measured).
    @Test func imageModelsFlagNoiseAndGrayscaleImages() throws {
        let model = try VigilModel.load(path: Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy").path)
        let spec = try #require(model.imageInput)
        let guardian = try #require(model.oodGuard)
        #expect(guardian.reference.count == 64 && model.activationNet?.outputCount == 64)
        let folder = Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy/test_images")
        let reader = try ImageCohortReader(url: folder, model: model)
        var test: [PredictionRecord] = []
        while let b = try reader.nextBatch(maxImages: 50) { test += try model.score(b, threads: 1) }
        func flagged(_ r: [PredictionRecord]) -> Int { r.filter { $0.warnings.contains { $0.hasPrefix("ood: ") } }.count }
        #expect(test.count == 100 && flagged(test) <= 5, "\(flagged(test)) of \(test.count) test images flagged")
        // Images built from pixels with the manifest's preprocessing: (p * scale - mean[c]) / std[c].
        func tensor(_ pixel: (Int, Int, Int) -> UInt8) -> [Float] {
            var t: [Float] = []
            for c in 0..<3 { for y in 0..<spec.height { for x in 0..<spec.width { t.append((Float(pixel(c, y, x)) * spec.scale - spec.mean[c]) / spec.std[c]) } } }
            return t
        }
        var rng = SplitMix64(seed: 7)
        let noise = (0..<100).flatMap { _ in tensor { _, _, _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") }.sorted()
        var gray: [Float] = []
        for f in files {
            let image = try ImageDecoder.decode(try Data(contentsOf: folder.appendingPathComponent(f)), name: f)
            try #require(image.channels == 3 && image.width == spec.width && image.height == spec.height)
            gray += tensor { _, y, x in
                let i = (y * image.width + x) * 3
                let l = 0.299 * Double(image.pixels[i]) + 0.587 * Double(image.pixels[i + 1]) + 0.114 * Double(image.pixels[i + 2])
                return UInt8(min(255, max(0, l.rounded())))
            }
        }
        for (name, tensors, want) in [("noise", noise, 100), ("grayscale", gray, 95)] {
            let n = tensors.count / spec.count
            let records = try model.score(ImageBatch(count: n, ids: (0..<n).map(String.init), tensors: tensors, groupRaw: Array(repeating: nil, count: n * model.fieldGroups.count), origins: (0..<n).map(String.init), notes: Array(repeating: [], count: n)), threads: 1)
            #expect(flagged(records) >= want, "\(name): \(flagged(records)) of \(n) flagged")
        }
    }
}
