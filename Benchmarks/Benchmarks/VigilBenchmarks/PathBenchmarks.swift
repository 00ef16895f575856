// The other model paths: the shipped CNN (batch 1 and 64, integrated gradients), linear SHAP on
// the logistic model (TreeSHAP is in the LightGBM suite), and writing records (JSON Lines and
// CSV) as `vigil score` does. Everything on one thread; inputs are
// prepared once, outside the measured closures.

import Benchmark
import Foundation
import VigilEngine

private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // VigilBenchmarks/
    .deletingLastPathComponent()  // Benchmarks/Benchmarks/
    .deletingLastPathComponent()  // Benchmarks/
    .deletingLastPathComponent()  // repository

/// Loads once, on first use, from whichever thread gets there first (never inside a
/// measurement: each benchmark's setup touches it).
final class Lazy<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var loaded: T?
    private let load: @Sendable () -> T

    init(_ load: @escaping @Sendable () -> T) { self.load = load }

    var value: T {
        lock.lock()
        defer { lock.unlock() }
        if let loaded { return loaded }
        let v = load()
        loaded = v
        return v
    }
}

private func loadOrDie<T>(_ what: String, _ body: () throws -> T) -> T {
    do { return try body() } catch { fatalError("\(what): \(error)") }
}

/// The retinopathy package and its 100 test images, preprocessed.
private struct ImageWorkload: @unchecked Sendable {
    let model: VigilModel
    let batch: ImageBatch
    let size: Int
}

/// A tabular model with its rows as one batch.
private struct RowWorkload: @unchecked Sendable {
    let model: VigilModel
    let batch: RowBatch
}

func registerPathBenchmarks(models: URL) {
    let images = Lazy<ImageWorkload> {
        loadOrDie("models/retinopathy") {
            let dir = repositoryRoot.appendingPathComponent("models/retinopathy")
            let model = try VigilModel.load(path: dir.path)
            let reader = try ImageCohortReader(url: dir.appendingPathComponent("test_images"), model: model)
            guard let batch = try reader.nextBatch(maxImages: 100) else { fatalError("no test images") }
            return ImageWorkload(model: model, batch: batch, size: model.imageInput!.count)
        }
    }
    func rows(_ model: String, _ rows: String, count: Int) -> Lazy<RowWorkload> {
        Lazy {
            loadOrDie("\(model) / \(rows) (make them: python3 Benchmarks/make_models.py)") {
                let m = try VigilModel.load(path: models.appendingPathComponent(model).path)
                let reader = try CohortReader(url: models.appendingPathComponent(rows), model: m)
                guard let b = try reader.nextBatch(maxRows: count) else { fatalError("no rows") }
                return RowWorkload(model: m, batch: b)
            }
        }
    }
    let linear = rows("logistic40/model.linear.json", "logistic40/rows.csv", count: 10_000)

    Benchmark("CNN retinopathy batch 1", configuration: .init(metrics: metrics, scalingFactor: .kilo, setup: { _ = images.value })) { b in
        let w = images.value
        var i = 0
        w.batch.tensors.withUnsafeBufferPointer { t in
            b.startMeasurement()
            for _ in b.scaledIterations {
                blackHole(w.model.predictImages(t.baseAddress! + i * w.size, count: 1, threads: 1))
                i = (i + 1) % w.batch.count
            }
        }
    }

    Benchmark("CNN retinopathy batch 64", configuration: .init(metrics: metrics, setup: { _ = images.value })) { b in
        let w = images.value
        w.batch.tensors.withUnsafeBufferPointer { t in
            b.startMeasurement()
            for _ in b.scaledIterations { blackHole(w.model.predictImages(t.baseAddress!, count: 64, threads: 1)) }
        }
    }

    Benchmark("CNN retinopathy integrated gradients 1 image", configuration: .init(metrics: metrics, maxIterations: 200, setup: { _ = images.value })) { b in
        let w = images.value
        guard let ig = try w.model.explainer.get().integratedGradients else { fatalError("no integrated gradients") }
        var i = 0
        w.batch.tensors.withUnsafeBufferPointer { t in
            b.startMeasurement()
            for _ in b.scaledIterations {
                blackHole(ig.explain(t.baseAddress! + i * w.size))
                i = (i + 1) % w.batch.count
            }
        }
    }

    Benchmark("logistic 40 linear SHAP 10k rows", configuration: .init(metrics: metrics, setup: { _ = linear.value })) { b in
        let w = linear.value
        b.startMeasurement()
        for _ in b.scaledIterations { blackHole(try w.model.explain(w.batch.features, rows: w.batch.count, threads: 1)) }
    }

    // Records: score once outside, then measure writing 10k records to /dev/null.
    for format in [CohortFormat.jsonl, .csv] {
        Benchmark("logistic 40 write 10k records \(format.rawValue)", configuration: .init(metrics: metrics, setup: { _ = linear.value })) { b in
            let w = linear.value
            let records = try w.model.score(w.batch, threads: 1)
            let writer = try RecordWriter(model: w.model, output: URL(fileURLWithPath: "/dev/null"), format: format)
            b.startMeasurement()
            for _ in b.scaledIterations { try writer.write(records) }
        }
    }
}
