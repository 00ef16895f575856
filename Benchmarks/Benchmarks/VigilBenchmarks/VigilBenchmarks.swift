// Vigil benchmarks (ordo-one/benchmark). Models and rows come from Benchmarks/models/, written by
// Benchmarks/make_models.py. Loading the model and parsing rows.csv happen once, outside every
// measured closure; each closure only scores and hands its result to blackHole.
//
// Single-row benchmarks run 1,000 calls per iteration (scalingFactor .kilo), cycling through the
// 10,000 rows, so the figures marked * are per call. Batch benchmarks score all 10,000 rows
// once per iteration on one thread: Throughput is batches/s, and the custom metric `rows/s`
// (timed inside the closure around the scoring call alone) gives rows per second directly.
// Everything runs on one thread (threads: 1) for stable, comparable figures.

import Benchmark
import Foundation
import VigilEngine

/// Benchmarks/models/, found from this file's location (override with VIGIL_BENCH_MODELS).
private let modelsDirectory: URL = {
    if let dir = ProcessInfo.processInfo.environment["VIGIL_BENCH_MODELS"], !dir.isEmpty {
        return URL(fileURLWithPath: dir)
    }
    return URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // VigilBenchmarks/
        .deletingLastPathComponent()  // Benchmarks/Benchmarks/
        .deletingLastPathComponent()  // Benchmarks/
        .appendingPathComponent("models")
}()

/// A loaded model with its rows, pre-shaped for every benchmark.
private struct Workload: Sendable {
    let model: VigilModel
    /// All rows as one batch (the batch benchmarks).
    let batch: RowBatch
    /// One feature array per row (single-row raw path).
    let rowFeatures: [[Double]]
    /// One single-row batch per row (single-row full-record path).
    let rowBatches: [RowBatch]

    init(model modelPath: String, rows rowsPath: String) {
        let modelURL = modelsDirectory.appendingPathComponent(modelPath)
        let rowsURL = modelsDirectory.appendingPathComponent(rowsPath)
        do {
            model = try VigilModel.load(path: modelURL.path)
            let reader = try CohortReader(url: rowsURL, model: model)
            guard let b = try reader.nextBatch(maxRows: 1_000_000), b.count > 0 else {
                fatalError("\(rowsURL.path): no rows")
            }
            batch = b
        } catch {
            fatalError("""
                cannot load \(modelURL.path) / \(rowsURL.path): \(error)
                Make the models first: python3 Benchmarks/make_models.py
                """)
        }
        let f = model.schema.count
        let g = model.fieldGroups.count
        let b = batch
        rowFeatures = (0..<b.count).map { r in Array(b.features[(r * f)..<((r + 1) * f)]) }
        rowBatches = (0..<b.count).map { r in
            RowBatch(count: 1, ids: [b.ids[r]], features: Array(b.features[(r * f)..<((r + 1) * f)]),
                     groupRaw: Array(b.groupRaw[(r * g)..<((r + 1) * g)]), origins: [b.origins[r]])
        }
    }
}

/// The metrics every benchmark asks for. `.instructions` needs hardware performance counters
/// (perf_event_open); where there are none (most VMs) the benchmark simply omits it.
let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal, .instructions]

/// Rows scored per second in a batch benchmark (larger is better).
private let rowsPerSecond = BenchmarkMetric.custom("rows/s", polarity: .prefersLarger, useScalingFactor: false)

/// Runs `body` and records the rows it scored per second as the `rows/s` metric.
private func timedBatch(_ benchmark: Benchmark, rows: Int, _ body: () throws -> Void) rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = start.duration(to: clock.now)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    benchmark.measurement(rowsPerSecond, Int((Double(rows) / max(seconds, 1e-9)).rounded()))
}

private func registerSuite(_ name: String, explain: Bool = false, _ load: @escaping @Sendable () -> Workload) {
    // Loaded on first use by any of this suite's benchmarks, never inside a measurement:
    // each benchmark's setup touches it before measuring starts.
    let cache = Lazy(load)

    Benchmark(
        "\(name) single row raw predict",
        configuration: .init(metrics: metrics, scalingFactor: .kilo, setup: { _ = cache.value })
    ) { benchmark in
        let w = cache.value
        let n = w.rowFeatures.count
        var r = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(w.model.predict(w.rowFeatures[r], rows: 1, threads: 1))
            r += 1
            if r == n { r = 0 }
        }
    }

    Benchmark(
        "\(name) single row full score",
        configuration: .init(metrics: metrics, scalingFactor: .kilo, setup: { _ = cache.value })
    ) { benchmark in
        let w = cache.value
        let n = w.rowBatches.count
        var r = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try w.model.score(w.rowBatches[r], threads: 1))
            r += 1
            if r == n { r = 0 }
        }
    }

    Benchmark(
        "\(name) batch 10k raw predict",
        configuration: .init(metrics: metrics + [rowsPerSecond], setup: { _ = cache.value })
    ) { benchmark in
        let w = cache.value
        benchmark.startMeasurement()
        timedBatch(benchmark, rows: w.batch.count) {
            blackHole(w.model.predict(w.batch.features, rows: w.batch.count, threads: 1))
        }
    }

    if explain {
        // TreeSHAP on the first 1,000 rows, as compare.py's TreeSHAP work measures it (the
        // features are sliced outside the measurement).
        Benchmark(
            "\(name) batch 1k TreeSHAP",
            configuration: .init(metrics: metrics + [rowsPerSecond], setup: { _ = cache.value })
        ) { benchmark in
            let w = cache.value
            let rows = min(1000, w.batch.count)
            let features = Array(w.batch.features[0..<(rows * w.model.schema.count)])
            benchmark.startMeasurement()
            try timedBatch(benchmark, rows: rows) {
                blackHole(try w.model.explain(features, rows: rows, threads: 1))
            }
        }
    }

    Benchmark(
        "\(name) batch 10k full score",
        configuration: .init(metrics: metrics + [rowsPerSecond], setup: { _ = cache.value })
    ) { benchmark in
        let w = cache.value
        benchmark.startMeasurement()
        try timedBatch(benchmark, rows: w.batch.count) {
            blackHole(try w.model.score(w.batch, threads: 1))
        }
    }
}


let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.warmupIterations = 3
    Benchmark.defaultConfiguration.maxDuration = .seconds(3)
    Benchmark.defaultConfiguration.maxIterations = 10_000

    registerSuite("LightGBM 500 trees", explain: true) { Workload(model: "lgb500/model.txt", rows: "lgb500/rows.csv") }
    registerSuite("XGBoost 500 trees depth 6") { Workload(model: "xgb500/model.json", rows: "xgb500/rows.csv") }
    registerSuite("logistic 40 features") {
        Workload(model: "logistic40/model.linear.json", rows: "logistic40/rows.csv")
    }
    registerPathBenchmarks(models: modelsDirectory)
    registerServerBenchmarks()
}
