import Foundation
import VigilEngine

extension Score {
    /// `vigil score` for a CNN: --input is a folder of images, or a CSV (or list) of image paths.
    func scoreImages(_ model: VigilModel, log: StandardError) throws {
        let reader = try ImageCohortReader(url: URL(fileURLWithPath: input), model: model)
        for note in reader.notes { log.line("warning: \(note)") }
        let outFormat = outputFormat ?? output.map { CohortFormat.guess(path: $0) } ?? .csv
        let writer = try RecordWriter(model: model, output: output.map { URL(fileURLWithPath: $0) }, format: outFormat)
        let progress = Progress(total: reader.totalImages, log: log)
        var rows = 0, warned = 0, positives = 0
        while let batch = try reader.nextBatch(maxImages: min(batchSize, 512)) {
            let records = try model.score(batch)
            try writer.write(records)
            rows += records.count
            warned += records.reduce(0) { $0 + ($1.warnings.isEmpty ? 0 : 1) }
            positives += records.reduce(0) { $0 + ($1.decision == true ? 1 : 0) }
            progress.update(rows: rows, bytes: reader.imagesRead)
        }
        progress.finish(rows: rows)
        var summary = "scored \(rows) images with \(model.name) \(model.version) (\(model.format.displayName) CNN, sha256 \(model.sha256.prefix(12)))"
        if model.makesDecisions { summary += "; \(positives) positive decisions" }
        summary += "; \(warned) images with warnings"
        log.line(summary)
    }
}
