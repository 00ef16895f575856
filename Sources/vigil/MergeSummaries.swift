import ArgumentParser
import Foundation
import VigilEngine

/// `vigil merge-summaries`: adds up the `--summary` files of a sharded `vigil score` job.
struct MergeSummaries: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-summaries",
        abstract: "Check and add up the --summary files of the shards of a vigil score job.",
        discussion: """
            Each FILE holds one summary a line (so `cat shard-*.json > all.jsonl` may be given \
            as one file). Every shard 0...N-1 must be there exactly once, of the same input \
            (sha256), model (sha256) and row total, each holding the rows --shard gives it and \
            having scored all of them. Prints the summary of the whole cohort: the same line \
            as `vigil score --summary` writes for the unsharded run.
            """)

    @Argument(help: "Summary files (vigil score --summary), in any order.")
    var files: [String]

    @Option(name: .long, help: "Write the merged summary to this file (default: standard output).")
    var output: String?

    func run() throws {
        try runReportingErrors {
            guard !files.isEmpty else { throw VigilError(.usage, "merge-summaries: give the summary files of every shard") }
            var parts: [(place: String, summary: ScoreSummary)] = []
            for f in files {
                let read = try ScoreSummary.read(file: f)
                parts += read.enumerated().map { (read.count == 1 ? f : "\(f) (summary \($0 + 1))", $1) }
            }
            let merged = try ScoreSummary.merge(parts)
            if let output {
                try merged.write(to: output)
            } else {
                FileHandle.standardOutput.write(Data(merged.text.utf8))
            }
        }
    }
}
