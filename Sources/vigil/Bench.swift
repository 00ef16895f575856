import ArgumentParser
import Foundation
import VigilEngine

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure single-row latency and batch throughput on this CPU.",
        discussion: """
            Rows come from --input (a cohort file, cycled to --rows) or, without one, from \
            uniform draws inside each feature's valid range (seed 42). Single-row latency is \
            measured one row at a time in-process, raw (margins and link) and with the full \
            prediction record (range checks, groups, threshold, decision). Throughput scores \
            --rows rows in batches of --batch over --threads partitions (OpenBLAS stays at one \
            thread). Times use the monotonic clock; the first pass is a warm-up. For an image \
            model, --input is a folder or list of images (decoded once, outside the timing): \
            batch-1 latency, throughput in batches of --image-batch over --threads partitions \
            with OpenBLAS at --blas-threads, and the cost of decoding and preprocessing a file. \
            --explain adds the attribution path (linear SHAP or TreeSHAP, no records): single-row latency \
            and batch throughput over the same partitions; for an image model, integrated gradients \
            of single images (latency, gradients per image, worst completeness error).
            """)

    @Option(name: .long, help: "Model package folder or bare model file.")
    var model: String

    @Option(name: .long, help: "Cohort file to take rows from (default: synthetic rows).")
    var input: String?

    @Option(name: .long, help: "Rows for the throughput run.")
    var rows: Int = 100_000

    @Option(name: .long, help: "Single-row calls for the latency run.")
    var singleCalls: Int = 20_000

    @Option(name: .long, help: "Rows per batch for the throughput run.")
    var batch: Int = 10_000

    @Option(name: .long, help: "Partitions (threads) for the throughput run.")
    var threads: Int = 1

    @Option(name: .long, help: "Image models: images per batch for the throughput run.")
    var imageBatch: Int = 64

    @Option(name: .long, help: "Image models: images scored in the throughput run.")
    var images: Int = 4096

    @Option(name: .long, help: "Image models: OpenBLAS threads (Vigil's default is 1).")
    var blasThreads: Int = 1

    @Flag(name: .long, help: "Also time attributions (single row and batch).")
    var explain = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        try runReportingErrors {
            guard rows > 0, batch > 0, threads > 0, singleCalls > 0 else {
                throw VigilError(.usage, "--rows, --batch, --threads and --single-calls must be > 0")
            }
            let m = try VigilModel.load(path: model)
            if let spec = m.imageInput {
                try benchImages(m, spec: spec)
                return
            }
            let source = try loadRows(m)
            let f = m.schema.count
            let n = source.count
            // Cycle the source rows up to --rows.
            var features = [Double](repeating: 0, count: rows * f)
            for r in 0..<rows { for j in 0..<f { features[r * f + j] = source.features[(r % n) * f + j] } }
            let groupsPerRow = m.fieldGroups.count

            func oneRowBatch(_ r: Int) -> RowBatch {
                let s = r % n
                return RowBatch(count: 1, ids: [source.ids[s]], features: Array(source.features[(s * f)..<((s + 1) * f)]),
                                groupRaw: Array(source.groupRaw[(s * groupsPerRow)..<((s + 1) * groupsPerRow)]), origins: ["bench"])
            }
            var sink = 0.0
            // Single row, raw kernel path.
            var raw: [Double] = []
            raw.reserveCapacity(singleCalls)
            for pass in 0..<2 {
                for r in 0..<singleCalls {
                    let s = r % n
                    let row = Array(source.features[(s * f)..<((s + 1) * f)])
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    sink += m.predict(row, rows: 1)[0]
                    if pass == 1 { raw.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000) }
                }
            }
            // Single row, full record.
            var full: [Double] = []
            full.reserveCapacity(singleCalls)
            for pass in 0..<2 {
                for r in 0..<singleCalls {
                    let b = oneRowBatch(r)
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    sink += try m.score(b, threads: 1)[0].outputs[0]
                    if pass == 1 { full.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000) }
                }
            }
            // Throughput, raw and full.
            func throughput(_ body: (Range<Int>) throws -> Void) rethrows -> Double {
                var best = 0.0
                for _ in 0..<3 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    var r = 0
                    while r < rows {
                        try body(r..<min(rows, r + batch))
                        r += batch
                    }
                    let secs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    best = max(best, Double(rows) / secs)
                }
                return best
            }
            let rawRate = throughput { range in
                sink += m.predict(Array(features[(range.lowerBound * f)..<(range.upperBound * f)]), rows: range.count, threads: threads)[0]
            }
            let batches = stride(from: 0, to: rows, by: batch).map { lo -> RowBatch in
                let hi = min(rows, lo + batch)
                return RowBatch(count: hi - lo, ids: (lo..<hi).map { source.ids[$0 % n] },
                                features: Array(features[(lo * f)..<(hi * f)]),
                                groupRaw: (lo..<hi).flatMap { r in source.groupRaw[((r % n) * groupsPerRow)..<((r % n + 1) * groupsPerRow)] },
                                origins: Array(repeating: "bench", count: hi - lo))
            }
            let fullRate = try throughput { range in
                sink += try m.score(batches[range.lowerBound / batch], threads: threads)[0].outputs[0]
            }
            // Attribution: single row, then batches, as for the raw path.
            var explainSingle: Percentiles?
            var explainRate: Double?
            var explainMethod: String?
            if explain {
                let e = try m.explainer.get()
                explainMethod = e.method.rawValue
                var times: [Double] = []
                times.reserveCapacity(singleCalls)
                for pass in 0..<2 {
                    for r in 0..<singleCalls {
                        let s = r % n
                        let row = Array(source.features[(s * f)..<((s + 1) * f)])
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        sink += try m.explain(row, rows: 1)[0]
                        if pass == 1 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000) }
                    }
                }
                explainSingle = Percentiles(times)
                explainRate = try throughput { range in
                    sink += try m.explain(Array(features[(range.lowerBound * f)..<(range.upperBound * f)]), rows: range.count, threads: threads)[0]
                }
            }
            let result = BenchResult(
                model: m.name, format: m.format.displayName, features: f, rows: rows, batch: batch, threads: threads,
                singleRaw: Percentiles(raw), singleFull: Percentiles(full), batchRawRowsPerSecond: rawRate,
                batchFullRowsPerSecond: fullRate, explainMethod: explainMethod, singleExplain: explainSingle,
                batchExplainRowsPerSecond: explainRate, checksum: sink)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(result), as: UTF8.self))
            } else {
                print("model \(m.name) (\(m.format.displayName)), \(f) features; \(rows) rows, batch \(batch), \(threads) thread(s)")
                var table = [
                    ["raw (margin + link)"] + result.singleRaw.cells + [String(format: "%.0f", rawRate)],
                    ["full record (guardrails)"] + result.singleFull.cells + [String(format: "%.0f", fullRate)],
                ]
                if let explainSingle, let explainRate, let explainMethod {
                    table.append(["attribution (\(explainMethod))"] + explainSingle.cells + [String(format: "%.0f", explainRate)])
                }
                printTable(header: ["path", "p50 µs", "p90 µs", "p99 µs", "max µs", "batch rows/s"], rows: table)
            }
        }
    }

    private func loadRows(_ m: VigilModel) throws -> RowBatch {
        if let input {
            let reader = try CohortReader(url: URL(fileURLWithPath: input), model: m)
            guard let b = try reader.nextBatch(maxRows: max(rows, 1)) else { throw VigilError(.input, "\(input): no rows") }
            return b
        }
        var g = SplitMix64(seed: 42)
        let n = 4096
        var features: [Double] = []
        for _ in 0..<n {
            for spec in m.schema.features {
                let r = spec.range ?? -3...3
                features.append(r.lowerBound + (r.upperBound - r.lowerBound) * g.unit())
            }
        }
        return RowBatch(count: n, ids: (0..<n).map(String.init), features: features,
                        groupRaw: Array(repeating: nil, count: n * m.fieldGroups.count), origins: Array(repeating: "synthetic", count: n))
    }
}

struct Percentiles: Codable {
    var p50: Double, p90: Double, p99: Double, max: Double

    init(_ samples: [Double]) {
        let s = samples.sorted()
        func q(_ p: Double) -> Double { s[Swift.min(s.count - 1, Int(p * Double(s.count)))] }
        p50 = q(0.5); p90 = q(0.9); p99 = q(0.99); max = s.last ?? 0
    }

    var cells: [String] { [p50, p90, p99, max].map { String(format: "%.2f", $0) } }
}

struct BenchResult: Codable {
    var model: String, format: String, features: Int, rows: Int, batch: Int, threads: Int
    var singleRaw: Percentiles, singleFull: Percentiles
    var batchRawRowsPerSecond: Double, batchFullRowsPerSecond: Double
    /// With --explain: the attribution method, its single-row latency and batch throughput.
    var explainMethod: String?, singleExplain: Percentiles?, batchExplainRowsPerSecond: Double?
    var checksum: Double
}

