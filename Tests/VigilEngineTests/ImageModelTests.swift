import Foundation
import Testing
import VigilEngine
import VigilTesting

/// CNN packages end to end: images decoded by libpng/libjpeg-turbo, preprocessed as the manifest
/// says, scored by the ConvNet, compared with onnxruntime on the same pixels (the shipped
/// retinopathy model's `reference_risk`, and the deep residual fixture made by
/// Tests/Fixtures/cnn/make_cnn_fixtures.py from RetinaMNIST test images).
struct ImageModelTests {
    static let retinopathy = Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy")
    static let deep = Fixtures.url("cnn/deep_resnet")

    /// Scores a CSV of image paths; returns ids and risks in order.
    func score(_ model: VigilModel, csv: URL, batch: Int = 256) throws -> (ids: [String], risks: [Double], records: [PredictionRecord]) {
        let reader = try ImageCohortReader(url: csv, model: model)
        var records: [PredictionRecord] = []
        while let b = try reader.nextBatch(maxImages: batch) { records += try model.score(b) }
        return (records.map(\.id), records.map { $0.outputs[0] }, records)
    }

    @Test func retinopathyEqualsOnnxRuntimeOnItsTestImages() throws {
        let model = try VigilModel.load(path: Self.retinopathy.path)
        #expect(model.imageInput?.shape == [3, 28, 28])
        let csv = Self.retinopathy.appendingPathComponent("test_cohort.csv")
        let (ids, risks, records) = try score(model, csv: csv)
        let table = try FixtureTable(contentsOf: csv)
        let reference = try #require(table.doubles("reference_risk"))
        #expect(ids == table.rows.map { $0[0] })
        let d = maxAbsDifference(risks, reference)
        // Float32 GEMMs in another summation order than MLAS: ~1e-7 here; the contract is 1e-4.
        #expect(d <= 1e-5, "max |Vigil - onnxruntime| = \(d)")
        #expect(records.allSatisfy { $0.threshold == model.policy.fallbackThreshold && $0.decision == ($0.outputs[0] >= $0.threshold!) })
    }

    @Test func deepResidualCNNEqualsOnnxRuntimeOnPNGAndJPEG() throws {
        let model = try VigilModel.load(path: Self.deep.path)
        let csv = Self.deep.appendingPathComponent("expected.csv")
        let (_, risks, records) = try score(model, csv: csv, batch: 7)
        let reference = try #require(try FixtureTable(contentsOf: csv).doubles("reference_risk"))
        #expect(risks.count == 40)
        #expect(maxAbsDifference(risks, reference) <= 1e-4, "max |Vigil - onnxruntime| = \(maxAbsDifference(risks, reference))")
        // The fixture spreads its risks, so equality is tested where a sigmoid is not flat.
        #expect(risks.contains { $0 < 0.2 } && risks.contains { $0 > 0.8 })
        #expect(records.allSatisfy { $0.warnings.isEmpty && $0.groupLabels == ["Unknown"] })
    }

    @Test func batchSizeThreadsAndKernelsDoNotChangeTheRisk() throws {
        let model = try VigilModel.load(path: Self.deep.path)
        let reader = try ImageCohortReader(url: Self.deep.appendingPathComponent("expected.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxImages: 40))
        let all = batch.tensors.withUnsafeBufferPointer { model.predictImages($0.baseAddress!, count: 40, threads: 2) }
        let one = batch.tensors.withUnsafeBufferPointer { t in
            (0..<40).flatMap { model.predictImages(t.baseAddress! + $0 * 3 * 28 * 28, count: 1, threads: 1) }
        }
        // Batched and per-sample GEMMs round differently; far below the 1e-4 contract.
        #expect(maxAbsDifference(all, one) <= 1e-6)
    }

    @Test func aFolderIsScoredInNameOrderWithFileNamesAsIds() throws {
        let model = try VigilModel.load(path: Self.retinopathy.path)
        let reader = try ImageCohortReader(url: Self.retinopathy.appendingPathComponent("test_images"), model: model)
        #expect(reader.totalImages == 100)
        let ids = reader.entries.map(\.id)
        #expect(ids.first == "1.png")
        #expect(ids.firstIndex(of: "4.png")! < ids.firstIndex(of: "12.png")!)
        let records = try model.score(try #require(try reader.nextBatch(maxImages: 10)))
        #expect(records.map(\.id) == Array(ids.prefix(10)))
    }

    @Test func aListOfPathsAndGroupColumnsAreRead() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let images = Self.retinopathy.appendingPathComponent("test_images")
        try dir.write("list.txt", "# two images\n\(images.path)/1.png\n\n\(images.path)/4.png\n")
        try dir.write("cohort.csv", "id,image,site\na,\(images.path)/1.png,north\nb,\"\(images.path)/4.png\",\n")
        let model = try VigilModel.load(path: Self.retinopathy.path)
        let list = try ImageCohortReader(url: dir.file("list.txt"), model: model)
        #expect(list.entries.map(\.id) == ["1.png", "4.png"])
        let csv = try ImageCohortReader(url: dir.file("cohort.csv"), model: model)
        let records = try model.score(try #require(try csv.nextBatch()))
        #expect(records.map(\.id) == ["a", "b"])
        #expect(records.map(\.groupLabels) == [["north"], ["Unknown"]])
    }

    @Test func anImageOfAnotherSizeIsResizedWithAWarningOrRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.deep)
        try FileManager.default.removeItem(at: dir.file("images"))
        // A 56x56 JPEG and a grayscale PNG: resized / expanded, with warnings.
        try FileManager.default.copyItem(at: Fixtures.url("cnn/images/large_56x56.jpg"), to: dir.file("large.jpg"))
        try FileManager.default.copyItem(at: Fixtures.url("cnn/images/gray_28x28.png"), to: dir.file("gray.png"))
        try dir.write("in.csv", "id,image\nlarge,large.jpg\ngray,gray.png\n")
        let model = try VigilModel.load(path: dir.url.path)
        let reader = try ImageCohortReader(url: dir.file("in.csv"), model: model)
        let records = try model.score(try #require(try reader.nextBatch()))
        #expect(records[0].warnings.contains { $0.contains("resized from 56x56 to 28x28") })
        #expect(records[1].warnings.contains { $0.contains("grayscale") })
        // With `resize: none` the large image is refused, naming it.
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("manifest.json"))) as! [String: Any]
        var input = manifest["input"] as! [String: Any]
        input["resize"] = "none"
        manifest["input"] = input
        try JSONSerialization.data(withJSONObject: manifest).write(to: dir.file("manifest.json"))
        let strict = try VigilModel.load(path: dir.url.path)
        let error = #expect(throws: VigilError.self) { _ = try ImageCohortReader(url: dir.file("in.csv"), model: strict).nextBatch() }
        #expect(error?.message.contains("large.jpg") == true && error?.message.contains("56x56") == true)
    }

    @Test func aManifestWhoseInputShapeDisagreesWithTheModelIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.deep)
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("manifest.json"))) as! [String: Any]
        var input = manifest["input"] as! [String: Any]
        input["shape"] = [3, 32, 32]
        manifest["input"] = input
        try JSONSerialization.data(withJSONObject: manifest).write(to: dir.file("manifest.json"))
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.kind == .package)
        #expect(error?.message.contains("[3, 32, 32]") == true && error?.message.contains("[3, 28, 28]") == true)
    }

    @Test func aBareCNNFileLoadsWithUnnormalisedPreprocessingAndAWarning() throws {
        let model = try VigilModel.load(path: Self.deep.appendingPathComponent("model.onnx").path)
        #expect(model.imageInput?.mean == [0, 0, 0])
        #expect(model.loadWarnings.contains { $0.contains("no mean/std") })
        #expect(model.schema.names == ["image"])
        let error = #expect(throws: VigilError.self) {
            _ = try model.score(RowBatch(count: 0, ids: [], features: [], groupRaw: [], origins: []))
        }
        #expect(error?.kind == .usage)
    }

    @Test func aTabularMLPWithASoftmaxScoresLikeOnnxRuntime() throws {
        let model = try VigilModel.load(path: Fixtures.url("cnn/mlp_softmax/model.onnx").path)
        #expect(model.ir.objective == .multiclassSoftmax(classes: 3))
        #expect(model.imageInput == nil)
        let reader = try CohortReader(url: Fixtures.url("cnn/mlp_softmax/input.csv"), model: model)
        let records = try model.score(try #require(try reader.nextBatch()))
        let expected = try FixtureTable(contentsOf: Fixtures.url("cnn/mlp_softmax/expected.csv"))
        let want = expected.rows.flatMap { $0.dropFirst().map { Double($0)! } }
        #expect(maxAbsDifference(records.flatMap(\.outputs), want) <= 1e-6)
    }
}
