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
        var tally = ScoreTally()
        while let batch = try reader.nextBatch(maxImages: min(batchSize, 512)) {
            let records = try model.score(batch)
            try writer.write(records)
            tally.add(records)
            progress.update(rows: tally.rows, bytes: reader.imagesRead)
        }
        progress.finish(rows: tally.rows)
        log.line(tally.summary(model, unit: "images", format: "\(model.format.displayName) CNN"))
    }
}
