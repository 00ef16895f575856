public import ArgumentParser
import Foundation
public import VigilEngine

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a cohort file (CSV or JSON Lines) and write one prediction record per row.",
        discussion: """
            The input's header names the features (extra columns are ignored; every model \
            feature must be present). Empty, NaN, NA and ? are missing values. The id column \
            (the manifest's id_field, else 'id') passes through. A value outside the manifest's \
            valid range is scored and flagged in the row's warnings. Memory stays flat whatever \
            the row count; progress shows on a terminal.

            Output (CSV): id, risk (risk_<k> per class, or prediction), group, threshold, \
            threshold_source, decision, warnings. JSON Lines output holds full records.

            Image models (CNN packages with an `input` object): --input is a folder of PNG/JPEG \
            files (id = file name), or a CSV whose `image` column holds paths relative to it \
            (id from the id column), or a list of paths, one per line. Each image is decoded, \
            resized if needed (bilinear) and normalised as the manifest says.

            --explain K adds each record's attribution in the model's margin space (log-odds \
            for a logistic model): linear SHAP (E[x] = the manifest means) or exact \
            path-dependent TreeSHAP, base + contributions = the margin. CSV: a \
            top_contributions column (name=+0.123;name2=-0.05, the K largest |contribution|); \
            JSON Lines: "attribution": {"base", "space", "top": [{"feature", "value", \
            "contribution"}]} (value null when missing). --explain all: CSV gets \
            contrib_<feature> per feature plus contrib_bias, JSON Lines every contribution. \
            Multiclass models: per class.

            Image models explain by integrated gradients from a black image: one contribution \
            per input value (named <channel>_<row>_<column>, e.g. R_12_5), base = the margin of \
            the black image, base + contributions = the margin up to the reported \
            completeness_error (an adaptive midpoint rule: --ig-steps intervals, the worst halved \
            until the error is within 1% of |margin - base|, at most 1024 gradients). --heatmaps \
            DIR writes DIR/<id>.png \
            for each image: the image, and beside it red (raises the risk) / blue (lowers it) \
            over grey.

            Sharding (batch jobs, e.g. a Kubernetes Indexed Job): --shard I/N, or --shard-count N \
            with --shard-index I or --shard-index-from-env (I from JOB_COMPLETION_INDEX), scores \
            only the I-th of N contiguous parts of the input's rows (blank lines are not rows), \
            cut on batch boundaries (--batch-size rows; images: the image batch) so that every \
            batch is one the unsharded run scores: logistic and CNN kernels round differently in \
            differently composed batches. Parts differ by at most one batch, the first ones \
            longer; give every shard the same --batch-size (and --threads for a CNN on machines \
            of different core counts). Every shard splits the \
            whole file into records first (values are parsed only in its own rows), and rows keep \
            their numbers, so the outputs of shards 0, 1, ..., N-1 concatenated in that order \
            are the unsharded output byte for byte: only shard 0 writes the CSV header (JSON \
            Lines has none). --summary FILE writes one JSON line: shard, its rows (first, count, \
            total), the input's SHA-256, the model, rows scored and with warnings, and per \
            group rows and positive/negative decisions; `vigil merge-summaries` checks the \
            shards' summaries and adds them up to the unsharded run's summary.
            """)

    @Option(name: .long, help: "Model package folder or bare model file.")
    var model: String

    @Option(name: .long, help: "A policy.json to apply instead of the package's own (or to a bare model file); refused when it names another model's SHA-256.")
    var policy: String?

    @Option(name: .long, help: "Cohort file: CSV with a header, or JSON Lines (.jsonl); for an image model, a folder of images or a CSV/list of image paths.")
    var input: String

    @Option(name: .long, help: "Output file (default: standard output).")
    var output: String?

    @Option(name: .long, help: "Input format: csv or jsonl (default: from the file name).")
    var inputFormat: CohortFormat?

    @Option(name: .long, help: "Output format: csv or jsonl (default: from the output name; csv on standard output).")
    var outputFormat: CohortFormat?

    @Option(name: .long, help: "Rows per batch (shards are cut on batches: give every shard of a job the same value).")
    var batchSize: Int = 8192

    @Option(name: .long, help: "Scoring partitions per batch (default: every core). Logistic and CNN kernels round per partition: give every shard of a job, and any run compared with them, the same value.")
    var threads: Int?

    @Option(name: .long, help: "Attributions in each record: 'all', or K for the top K by |contribution|.")
    var explain: String?

    @Option(name: .long, help: "Image models: write a heat-map PNG of each image's integrated gradients into this folder (created if needed).")
    var heatmaps: String?

    @Option(name: .customLong("ig-steps"), help: "Image models: integrated gradients start from this many path intervals per image (2-4096) and refine up to 1024 gradients until the completeness error is within 1%.")
    var igSteps: Int = 64

    @Option(name: .long, help: "Bare model files: the input's names for the model's features, in model order, comma-separated (for a model that names them f0.., float_input or Column_0..).")
    var featureNames: String?

    @Option(name: .long, help: "Bare model files: a file with the input's names for the model's features, in model order, one per line.")
    var featureNamesFile: String?

    @Flag(name: .long, help: "The input is a raw event table (CSV: one row per entity and time, the pipeline's entity, time and input columns) for a model whose manifest declares a feature pipeline; each row is scored with the features derived as the pipeline declares (docs/FORMATS.md, Feature pipelines).")
    var events = false

    @Flag(name: .long, help: "CSV input: the first F columns besides the id column are the model's F features, in order, whatever the header calls them.")
    var positional = false

    @Option(name: .long, help: "Longest CSV field, in bytes (default 1 MiB); a longer one is refused naming its line.")
    var maxFieldBytes = CohortReader.Limits().maxFieldBytes

    @Option(name: .long, help: "Longest CSV record or JSON Lines line, in bytes (default 4 MiB); an unclosed quote fails at this size, naming the line it opened on.")
    var maxRecordBytes = CohortReader.Limits().maxRecordBytes

    @Option(name: .long, help: "Score only shard I of N (I from 0): the I-th of N contiguous parts of the rows. Concatenating the outputs of shards 0..N-1 in order gives the unsharded output byte for byte; only shard 0 writes the CSV header.")
    var shard: String?

    @Option(name: .long, help: "With --shard-count: this shard's index, 0...N-1.")
    var shardIndex: Int?

    @Option(name: .long, help: "The number of shards N (1...100000), with --shard-index or --shard-index-from-env.")
    var shardCount: Int?

    @Flag(name: .long, help: "With --shard-count: take the shard index from JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job).")
    var shardIndexFromEnv = false

    @Option(name: .long, help: "Write a one-line JSON summary here: shard, rows, input SHA-256, model, decisions per group (vigil merge-summaries adds the shards' up).")
    var summary: String?

    @Flag(name: .long, help: "No progress or summary on standard error.")
    var quiet = false

    func run() throws {
        try runReportingErrors {
            guard batchSize > 0 else { throw VigilError(.usage, "--batch-size must be > 0, got \(batchSize)") }
            if let threads, !(1...1024).contains(threads) { throw VigilError(.usage, "--threads must be in 1...1024, got \(threads)") }
            let explainMode = try explain.map { text throws(VigilError) in try ExplainMode(parsing: text) }
            let shard = try Shard.resolve(shard: self.shard, index: shardIndex, count: shardCount, indexFromEnvironment: shardIndexFromEnv)
            var model = try VigilModel.load(path: self.model, policy: policy.map { VigilModel.PolicySource.file($0) } ?? .packageFile)
            let log = StandardError(quiet: quiet)
            for w in model.loadWarnings { log.line("warning: \(w)") }
            if model.imageInput != nil {
                try scoreImages(model, explain: explainMode, shard: shard, log: log)
                return
            }
            if heatmaps != nil {
                throw VigilError(.usage, "--heatmaps is for image models; \(model.name) is tabular (use --explain)")
            }
            if explainMode != nil {
                for w in try model.explainer.get().warnings { log.line("warning: \(w)") }
            }
            if events {
                try scoreEvents(model, explain: explainMode, log: log)
                return
            }
            if let names = try featureNameList() {
                guard !positional else { throw VigilError(.usage, "give --feature-names (or --feature-names-file) or --positional, not both") }
                model = try model.renamingFeatures(names)
            }
            func open() throws -> CohortReader {
                try CohortReader(url: URL(fileURLWithPath: input), model: model, format: inputFormat, positional: positional,
                                 limits: .init(maxFieldBytes: maxFieldBytes, maxRecordBytes: maxRecordBytes))
            }
            let reader = try open()
            // A shard counts the file's rows (records split, values not parsed), then skips to its own.
            var rows: Range<Int>?, total: Int?
            if let shard {
                let counted = try open().skip(rows: .max)
                total = counted
                let all = shard.rows(of: counted, batch: batchSize)
                let skipped = try reader.skip(rows: all.lowerBound)
                guard skipped == all.lowerBound else { throw VigilError(.io, "\(input): the file changed while it was read (\(skipped) rows where \(all.lowerBound) were counted)") }
                rows = all
            }
            if positional {
                // Records and attributions name the features as the input's header does.
                let columns = reader.columns.filter { $0 != model.idField }.prefix(model.schema.count)
                if let renamed = try? model.renamingFeatures(Array(columns)) { model = renamed }
                log.line("warning: --positional: features \(model.schema.names.prefix(8).joined(separator: ", "))\(model.schema.count > 8 ? ", ..." : "") are the input's first \(model.schema.count) columns besides '\(model.idField)'")
            }
            for note in reader.notes { log.line("warning: \(note)") }
            let outFormat = outputFormat ?? output.map { CohortFormat.guess(path: $0) } ?? .csv
            let writer = try RecordWriter(model: model, output: output.map { URL(fileURLWithPath: $0) }, format: outFormat, explain: explainMode)
            if let shard, shard.index > 0 { writer.omitHeader() }
            var remaining = rows?.count ?? .max
            var summary = try scoreAll(model, writer: writer, explain: explainMode, log: log, totalBytes: reader.totalBytes, bytesRead: { reader.bytesRead },
                                       suffix: shard.map { " (shard \($0))" } ?? "") {
                guard remaining > 0, let batch = try reader.nextBatch(maxRows: min(batchSize, remaining)) else { return nil }
                remaining -= batch.count
                return batch
            }
            try writeSummary(&summary, shard: shard, rows: rows, total: total, batch: batchSize, inputHash: { try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: input)) })
        }
    }
}

extension Score {
    /// Scores every batch `next` gives and writes its records: the one loop of `--input` and
    /// `--events` (progress, tally, summary).
    func scoreAll(
        _ model: VigilModel, writer: RecordWriter, explain explainMode: ExplainMode?, log: StandardError, totalBytes: Int,
        bytesRead: () -> Int, suffix: String, next: () throws -> RowBatch?
    ) throws -> ScoreSummary {
        let progress = Progress(total: totalBytes, log: log)
        var tally = ScoreTally()
        var summary = ScoreSummary(model: model)
        while let batch = try next() {
            let records = try model.score(batch, threads: threads, explain: explainMode != nil)
            try writer.write(records)
            tally.add(records)
            summary.add(records)
            progress.update(rows: tally.rows, bytes: bytesRead())
        }
        progress.finish(rows: tally.rows)
        log.line(tally.summary(model, unit: "rows", format: model.format.displayName) + suffix)
        return summary
    }
}

extension Score {
    /// `--events`: a raw event table through the model's feature pipeline (`EventTableReader`).
    func scoreEvents(_ model: VigilModel, explain explainMode: ExplainMode?, log: StandardError) throws {
        guard shard == nil, shardCount == nil else {
            throw VigilError(.usage, "--events cannot be sharded: a row's features depend on its entity's earlier rows (split the table by entity instead)")
        }
        guard featureNames == nil, featureNamesFile == nil, !positional else {
            throw VigilError(.usage, "--events reads the pipeline's input columns by name; --feature-names and --positional do not apply")
        }
        guard inputFormat == nil || inputFormat == .csv else { throw VigilError(.usage, "--events reads a CSV event table") }
        let reader = try EventTableReader(url: URL(fileURLWithPath: input), model: model,
                                          limits: .init(maxFieldBytes: maxFieldBytes, maxRecordBytes: maxRecordBytes))
        for note in reader.notes { log.line("warning: \(note)") }
        let outFormat = outputFormat ?? output.map { CohortFormat.guess(path: $0) } ?? .csv
        let writer = try RecordWriter(model: model, output: output.map { URL(fileURLWithPath: $0) }, format: outFormat, explain: explainMode)
        var summary = try scoreAll(model, writer: writer, explain: explainMode, log: log, totalBytes: reader.totalBytes, bytesRead: { reader.bytesRead },
                                   suffix: " (from events)") { try reader.nextBatch(maxRows: batchSize) }
        try writeSummary(&summary, shard: nil, rows: nil, total: nil, batch: batchSize, inputHash: { try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: input)) })
    }

    /// The names given by --feature-names or --feature-names-file, nil when neither is.
    func featureNameList() throws -> [String]? {
        switch (featureNames, featureNamesFile) {
        case (nil, nil): return nil
        case (_?, _?): throw VigilError(.usage, "give --feature-names or --feature-names-file, not both")
        case (let list?, nil): return list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        case (nil, let path?):
            guard let data = FileManager.default.contents(atPath: path) else { throw VigilError(.io, "\(path): cannot read the feature-names file") }
            return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }
}

extension Score {
    /// Completes and writes the --summary file, when asked: the shard and its rows (all rows
    /// scored when unsharded), the input's name and hash.
    func writeSummary(_ summary: inout ScoreSummary, shard: Shard?, rows: Range<Int>?, total: Int?, batch: Int, hashed: String = "file", inputHash: () throws -> String) throws {
        guard let path = self.summary else { return }
        summary.shard = shard ?? .whole
        summary.first = rows?.lowerBound ?? 0
        summary.count = rows?.count ?? summary.scored
        summary.total = total ?? summary.scored
        summary.batch = batch
        summary.inputName = URL(fileURLWithPath: input).lastPathComponent
        summary.inputHashed = hashed
        summary.inputSHA256 = try inputHash()
        try summary.write(to: path)
    }
}

extension CohortFormat: ExpressibleByArgument {}
