import Foundation
import VigilEngine

extension Bench {
    /// `vigil bench` for a CNN: images from --input (a folder or list, decoded and preprocessed
    /// once, outside the measurement) or synthetic tensors; batch-1 latency of the raw path
    /// (preprocessed tensor -> risk), throughput over --image-batch batches split into --threads
    /// partitions, with OpenBLAS at --blas-threads; and the per-image cost of decoding and
    /// preprocessing a file.
    func benchImages(_ m: VigilModel, spec: ImageInputSpec) throws {
        guard imageBatch > 0, images > 0, blasThreads > 0 else {
            throw VigilError(.usage, "--image-batch, --images and --blas-threads must be > 0")
        }
        VigilModel.setBLASThreads(blasThreads)
        defer { VigilModel.setBLASThreads(1) }
        let size = spec.count
        var source: [Float] = []
        var decodeMicros: [Double] = []
        var sourceCount = 0
        if let input {
            let reader = try ImageCohortReader(url: URL(fileURLWithPath: input), model: m)
            for e in reader.entries.prefix(1024) {
                let data = try Data(contentsOf: e.url)
                let t0 = DispatchTime.now().uptimeNanoseconds
                let image = try ImageDecoder.decode(data, name: e.url.path)
                var tensor = [Float](repeating: 0, count: size)
                _ = try tensor.withUnsafeMutableBufferPointer { try spec.tensor(from: image, name: e.id, into: $0.baseAddress!) }
                decodeMicros.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
                source += tensor
                sourceCount += 1
            }
        } else {
            var g = SplitMix64(seed: 42)
            sourceCount = 256
            source = (0..<(sourceCount * size)).map { _ in Float(g.unit() * 4 - 2) }
        }
        var sink = 0.0
        // Batch 1, one call at a time.
        var latency: [Double] = []
        let calls = min(singleCalls, 5000)
        latency.reserveCapacity(calls)
        source.withUnsafeBufferPointer { s in
            for pass in 0..<2 {
                for r in 0..<calls {
                    let p = s.baseAddress! + (r % sourceCount) * size
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    sink += m.predictImages(p, count: 1, threads: 1)[0]
                    if pass == 1 { latency.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000) }
                }
            }
        }
        // Throughput: --images images in batches of --image-batch, cycled from the source.
        let batches = (images + imageBatch - 1) / imageBatch
        var tensors = [Float](repeating: 0, count: imageBatch * size)
        for i in 0..<imageBatch {
            let from = (i % sourceCount) * size
            tensors.replaceSubrange((i * size)..<((i + 1) * size), with: source[from..<(from + size)])
        }
        var best = 0.0
        tensors.withUnsafeBufferPointer { t in
            for _ in 0..<4 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<batches { sink += m.predictImages(t.baseAddress!, count: imageBatch, threads: threads)[0] }
                let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                best = max(best, Double(batches * imageBatch) / secs)
            }
        }
        // --explain: integrated gradients of single images (one thread each), with the gradients
        // each needed.
        var integration: IntegrationBench?
        if explain, let ig = try m.explainer.get().integratedGradients {
            var micros: [Double] = [], steps: [Double] = [], worst = 0.0
            let count = min(sourceCount, 32)
            source.withUnsafeBufferPointer { s in
                _ = ig.explain(s.baseAddress!)  // warm-up
                for r in 0..<count {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let result = ig.explain(s.baseAddress! + r * size)
                    micros.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3)
                    steps.append(Double(result.steps))
                    worst = max(worst, result.relativeError)
                }
            }
            integration = IntegrationBench(
                images: count, microseconds: Percentiles(micros), meanSteps: steps.reduce(0, +) / Double(count),
                worstRelativeCompletenessError: worst)
        }
        let result = ImageBenchResult(
            model: m.name, images: sourceCount, batch: imageBatch, threads: threads, blasThreads: blasThreads,
            batch1: Percentiles(latency), imagesPerSecond: best,
            decodePreprocess: decodeMicros.isEmpty ? nil : Percentiles(decodeMicros), integratedGradients: integration,
            checksum: sink)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(result), as: UTF8.self))
        } else {
            print("model \(m.name) (CNN \(spec.shape)), \(sourceCount) source images; batch \(imageBatch), \(threads) partition(s), OpenBLAS \(blasThreads) thread(s)")
            var rows = [["batch 1 (tensor -> risk)"] + result.batch1.cells + [String(format: "%.0f", 1e6 / result.batch1.p50)]]
            rows.append(["batch \(imageBatch) throughput", "", "", "", "", String(format: "%.0f", best)])
            if let d = result.decodePreprocess { rows.append(["decode + preprocess (1 file)"] + d.cells + [""]) }
            if let i = integration {
                rows.append(["integrated gradients (1 image)"] + i.microseconds.cells + [String(format: "%.1f", 1e6 / i.microseconds.p50)])
            }
            printTable(header: ["path", "p50 µs", "p90 µs", "p99 µs", "max µs", "images/s"], rows: rows)
            if let i = integration {
                print(String(format: "integrated gradients: %.1f gradients per image on average, worst completeness error %.3g%% (%d images)", i.meanSteps, i.worstRelativeCompletenessError * 100, i.images))
            }
        }
    }
}

struct ImageBenchResult: Codable {
    var model: String, images: Int, batch: Int, threads: Int, blasThreads: Int
    var batch1: Percentiles
    var imagesPerSecond: Double
    var decodePreprocess: Percentiles?
    var integratedGradients: IntegrationBench?
    var checksum: Double
}

struct IntegrationBench: Codable {
    var images: Int
    var microseconds: Percentiles
    var meanSteps: Double
    var worstRelativeCompletenessError: Double
}
