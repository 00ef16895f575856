import Foundation
import VigilEngine

extension Score {
    /// `vigil score` for a CNN: --input is a folder of images, or a CSV (or list) of image paths.
    /// With `explain` or `--heatmaps`, each image's integrated gradients are computed (records
    /// carry them only with `explain`).
    func scoreImages(_ model: VigilModel, explain: ExplainMode?, shard: Shard?, log: StandardError) throws {
        guard (2...4096).contains(igSteps) else { throw VigilError(.usage, "--ig-steps must be 2...4096, got \(igSteps)") }
        let heatmapDir = heatmaps.map { URL(fileURLWithPath: $0, isDirectory: true) }
        if let heatmapDir {
            do {
                try FileManager.default.createDirectory(at: heatmapDir, withIntermediateDirectories: true)
            } catch {
                throw VigilError(.io, "\(heatmapDir.path): cannot create the heat-map folder (\(error.localizedDescription))")
            }
        }
        let integrate = explain != nil || heatmapDir != nil
        let reader = try ImageCohortReader(url: URL(fileURLWithPath: input), model: model)
        for note in reader.notes { log.line("warning: \(note)") }
        // A shard keeps its part of the images (the reader lists them all, in a fixed order).
        let total = reader.totalImages
        // Integrated gradients cost ~2 x steps forward passes per image: smaller batches keep the
        // progress line moving. A shard is cut on these batches (Shard).
        let perBatch = reader.imagesPerBatch(min(batchSize, integrate ? 32 : 512))
        let rows = shard.map { $0.rows(of: total, batch: perBatch) }
        let names = reader.entries.map(\.url.lastPathComponent)
        if let rows { reader.restrict(to: rows) }
        let outFormat = outputFormat ?? output.map { CohortFormat.guess(path: $0) } ?? .csv
        let writer = try RecordWriter(model: model, output: output.map { URL(fileURLWithPath: $0) }, format: outFormat, explain: explain)
        if let shard, shard.index > 0 { writer.omitHeader() }
        var summary = ScoreSummary(model: model)
        var worstError = 0.0, maxSteps = 0
        let progress = Progress(total: reader.totalImages, log: log)
        var tally = ScoreTally()
        while let batch = try reader.nextBatch(maxImages: perBatch) {
            let records = try model.score(batch, threads: threads, explain: integrate, integrationSteps: igSteps)
            if integrate, let spec = model.imageInput {
                for r in records {
                    guard let a = r.attribution else { continue }
                    if let i = a.integration {
                        worstError = max(worstError, i.relativeError)
                        maxSteps = max(maxSteps, i.steps)
                    }
                    if let heatmapDir {
                        try Heatmap(a, spec: spec).write(to: heatmapDir.appendingPathComponent(Self.fileName(forID: r.id) + ".png"))
                    }
                }
            }
            try writer.write(records)
            tally.add(records)
            summary.add(records)
            progress.update(rows: tally.rows, bytes: reader.imagesRead)
        }
        progress.finish(rows: tally.rows)
        log.line(tally.summary(model, unit: "images", format: "\(model.format.displayName) CNN") + (shard.map { " (shard \($0))" } ?? ""))
        // A folder is hashed by its image names (in scoring order); a CSV or list as a file.
        var isFolder: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: input, isDirectory: &isFolder)
        try writeSummary(&summary, shard: shard, rows: rows, total: rows == nil ? nil : total, batch: perBatch, hashed: isFolder.boolValue ? "file names" : "file") {
            isFolder.boolValue ? SHA256Digest.hex(of: names.map { $0 + "\n" }.joined().utf8) : try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: input))
        }
        if integrate, tally.rows > 0 {
            log.line(String(format: "integrated gradients: worst completeness error %.3g%% of |margin - base| (at most %d steps)", worstError * 100, maxSteps))
            if let heatmapDir { log.line("heat-maps written to \(heatmapDir.path)/<id>.png") }
        }
    }

    /// A record id as a file name: path separators and control characters become `_`.
    static func fileName(forID id: String) -> String {
        let safe = String(id.map { $0 == "/" || $0 == "\\" || $0 == ":" || $0.asciiValue.map { $0 < 32 } == true ? "_" : $0 })
        return safe.isEmpty || safe == "." || safe == ".." ? "_" + safe : safe
    }
}
