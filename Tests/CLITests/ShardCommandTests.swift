import Foundation
import Testing
import VigilTesting

/// `vigil score --shard I/N` (issue 20): the outputs of the N shards concatenated in order are
/// the unsharded output byte for byte (CSV and JSON Lines, in and out; tabular and image
/// cohorts), their `--summary` files merge into the unsharded summary, and every malformed shard
/// argument is refused naming the flag, the value and the rule.
struct ShardCommandTests {
    /// The readmission cohort as JSON Lines (numbers as numbers, text as strings), with blank
    /// lines between some rows (not rows: a shard must not count them).
    static func readmissionJSONL(rows: Int) throws -> String {
        let text = try String(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("models/readmission/test_cohort.csv"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var out = ""
        for (k, line) in lines.dropFirst().prefix(rows).enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let members = zip(header, cells).map { name, v -> String in
                let value = name == "encounter_id" || Double(v) == nil ? "\"\(v)\"" : v
                return "\"\(name)\":\(v.isEmpty ? "null" : value)"
            }
            out += "{\(members.joined(separator: ","))}\n"
            if k % 97 == 3 { out += "\n" }
        }
        return out
    }

    /// The sepsis cohort without its id column (ids are then row numbers) and with blank lines.
    static func sepsisWithoutIDs(rows: Int) throws -> String {
        let text = try String(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("models/sepsis/test_cohort.csv"), encoding: .utf8)
        var out = ""
        for (k, line) in text.split(separator: "\n").prefix(rows + 1).enumerated() {
            out += line.split(separator: ",", omittingEmptySubsequences: false).dropFirst().joined(separator: ",") + "\n"
            if k % 101 == 50 { out += "\n" }
        }
        return out
    }

    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let model: String
        /// A shipped cohort, or nil for `made` written to a file named `file`.
        let input: String?
        let file: String
        let made: @Sendable () throws -> String
        let extra: [String]
        let output: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "sepsis (LightGBM) CSV to CSV", model: "models/sepsis", input: "models/sepsis/test_cohort.csv", file: "", made: { "" }, extra: ["--batch-size", "100"], output: "out.csv"),
        Case(name: "sepsis CSV to JSON Lines, --explain 3", model: "models/sepsis", input: "models/sepsis/test_cohort.csv", file: "", made: { "" }, extra: ["--explain", "3", "--batch-size", "64"], output: "out.jsonl"),
        Case(name: "readmission (ONNX) JSON Lines with blank lines to CSV", model: "models/readmission", input: nil, file: "cohort.jsonl", made: { try readmissionJSONL(rows: 1001) }, extra: ["--batch-size", "50"], output: "out.csv"),
        Case(name: "readmission-xgb (XGBoost) JSON Lines to JSON Lines", model: "models/readmission-xgb", input: nil, file: "cohort.jsonl", made: { try readmissionJSONL(rows: 999) }, extra: ["--batch-size", "128"], output: "out.jsonl"),
        Case(name: "sepsis CSV without an id column (row numbers), blank lines, to CSV", model: "models/sepsis", input: nil, file: "noid.csv", made: { try sepsisWithoutIDs(rows: 1003) }, extra: ["--batch-size", "10"], output: "out.csv"),
        Case(name: "retinopathy (CNN) folder of images to CSV", model: "models/retinopathy", input: "models/retinopathy/test_images", file: "", made: { "" }, extra: ["--batch-size", "16"], output: "out.csv"),
        Case(name: "retinopathy CSV of image paths to JSON Lines", model: "models/retinopathy", input: "models/retinopathy/test_cohort.csv", file: "", made: { "" }, extra: ["--batch-size", "8"], output: "out.jsonl"),
    ]

    @Test(arguments: cases)
    func fourShardsConcatenatedAreTheUnshardedOutputByteForByte(_ c: Case) throws {
        let dir = try TemporaryDirectory("vigil-shard")
        defer { dir.remove() }
        var input = c.input ?? ""
        if c.input == nil {
            input = dir.file(c.file).path
            try c.made().write(toFile: input, atomically: true, encoding: .utf8)
        }
        let base = ["score", "--model", c.model, "--input", input, "--quiet"] + c.extra
        let whole = dir.file("whole-" + c.output).path
        let r = try CLI.run(base + ["--output", whole, "--summary", dir.file("whole.summary.json").path])
        #expect(r.status == 0, "\(r.stderr)")
        let expected = try Data(contentsOf: URL(fileURLWithPath: whole))
        #expect(expected.count > 1000, "\(c.name): the unsharded output is too small to test (\(expected.count) bytes)")
        var joined = Data()
        var sizes: [Int] = []
        var summaries: [String] = []
        for i in 0..<4 {
            let out = dir.file("shard\(i)-" + c.output).path
            let summary = dir.file("shard\(i).summary.json").path
            let s = try CLI.run(base + ["--shard", "\(i)/4", "--output", out, "--summary", summary])
            #expect(s.status == 0, "\(c.name) shard \(i): \(s.stderr)")
            let part = try Data(contentsOf: URL(fileURLWithPath: out))
            sizes.append(part.count)
            joined.append(part)
            summaries.append(summary)
        }
        #expect(joined == expected, "\(c.name): shards of \(sizes) bytes concatenated differ from the unsharded \(expected.count) bytes")
        #expect(sizes.allSatisfy { $0 > 0 }, "\(c.name): every shard holds rows (\(sizes))")
        if c.output.hasSuffix(".csv") {
            let header = String(decoding: expected.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            for i in 1..<4 {
                let part = try String(contentsOfFile: dir.file("shard\(i)-" + c.output).path, encoding: .utf8)
                #expect(!part.hasPrefix(header), "\(c.name): only shard 0 carries the CSV header (shard \(i) has it)")
            }
        }
        // The shards' summaries merge into the unsharded run's summary, byte for byte.
        let merged = try CLI.run(["merge-summaries"] + summaries.reversed())
        #expect(merged.status == 0, "\(merged.stderr)")
        let wholeSummary = try String(contentsOfFile: dir.file("whole.summary.json").path, encoding: .utf8)
        #expect(merged.stdout == wholeSummary, "\(c.name): merged \(merged.stdout) vs unsharded \(wholeSummary)")
        #expect(wholeSummary.contains("\"shard\":{\"index\":0,\"count\":1}") && wholeSummary.contains("\"sha256\":\""))
    }

    @Test func theCasesCoverCSVAndJSONLinesInAndOutAndImages() {
        #expect(Self.cases.count == 7)
        #expect(Self.cases.contains { $0.file.hasSuffix(".jsonl") } && Self.cases.contains { $0.output.hasSuffix(".jsonl") })
        #expect(Self.cases.contains { $0.model == "models/retinopathy" })
    }

    /// Shards may hold no row (N above the row count, or above the batch count: shards are cut
    /// on batches); the concatenation still holds, and the header is written once, by shard 0. `--shard-count` with `--shard-index` and with
    /// `JOB_COMPLETION_INDEX` pick the same rows as `--shard`.
    @Test func moreShardsThanRowsAndTheThreeWaysOfNamingAShard() throws {
        let dir = try TemporaryDirectory("vigil-shard-small")
        defer { dir.remove() }
        let input = dir.file("five.csv").path
        let cohort = try String(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("models/sepsis/test_cohort.csv"), encoding: .utf8)
        try (cohort.split(separator: "\n").prefix(6).joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let base = ["score", "--model", "models/sepsis", "--input", input, "--quiet", "--batch-size", "1"]
        let whole = try CLI.run(base)
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout.split(separator: "\n").count == 6)
        var joined = ""
        var rowsPerShard: [Int] = []
        for i in 0..<8 {
            let a = try CLI.run(base + ["--shard", "\(i)/8"])
            let b = try CLI.run(base + ["--shard-count", "8", "--shard-index", "\(i)"])
            let c = try CLI.run(base + ["--shard-count", "8", "--shard-index-from-env"], environment: ["JOB_COMPLETION_INDEX": "\(i)"])
            #expect(a.status == 0 && b.status == 0 && c.status == 0, "shard \(i): \(a.stderr) \(b.stderr) \(c.stderr)")
            #expect(a.stdout == b.stdout && a.stdout == c.stdout, "shard \(i): the three spellings disagree")
            rowsPerShard.append(a.stdout.split(separator: "\n").count - (i == 0 ? 1 : 0))
            joined += a.stdout
        }
        #expect(joined == whole.stdout)
        #expect(rowsPerShard == [1, 1, 1, 1, 1, 0, 0, 0], "\(rowsPerShard)")
        // With batches of 2 rows: 3 batches (2, 2, 1 rows) over 4 shards.
        let pairs = try (0..<4).map { i in try CLI.run(Array(base.dropLast(2)) + ["--batch-size", "2", "--shard", "\(i)/4"]).stdout }
        #expect(pairs.map { $0.split(separator: "\n").count } == [3, 2, 1, 0], "\(pairs)")
        #expect(pairs.joined() == whole.stdout)
    }

    static let refusals: [(args: [String], env: [String: String], says: String)] = [
        (["--shard", "4/4"], [:], "--shard 4/4: the shard index 4 must be less than the shard count 4"),
        (["--shard", "0/0"], [:], "the shard count 0 must be in 1...100000"),
        (["--shard", "1/1000000"], [:], "--shard: '1000000' must be a whole number of at most 6 digits for the count N"),
        (["--shard=-1/4"], [:], "--shard: '-1' must be a whole number of at most 6 digits for the index I"),
        (["--shard", "1/4/2"], [:], "--shard: '1/4/2' must be I/N"),
        (["--shard", "4"], [:], "--shard: '4' must be I/N"),
        (["--shard", "a/4"], [:], "--shard: 'a' must be a whole number"),
        (["--shard", " 1/4"], [:], "must be a whole number"),
        (["--shard", "0/4", "--shard-count", "4"], [:], "give either --shard I/N or --shard-count N"),
        (["--shard-index", "1"], [:], "--shard-index needs --shard-count N"),
        (["--shard-index-from-env"], [:], "--shard-index-from-env needs --shard-count N"),
        (["--shard-count", "4"], [:], "--shard-count 4 needs --shard-index I (0...3) or --shard-index-from-env"),
        (["--shard-count", "0", "--shard-index", "0"], [:], "--shard-count: 0 must be in 1...100000"),
        (["--shard-count", "100001", "--shard-index", "0"], [:], "--shard-count: 100001 must be in 1...100000"),
        (["--shard-count", "4", "--shard-index", "4"], [:], "--shard-index: 4 must be in 0...3"),
        (["--shard-count", "4", "--shard-index=-1"], [:], "--shard-index: -1 must be in 0...3"),
        (["--shard-count", "4", "--shard-index", "1", "--shard-index-from-env"], [:], "give one of them, not both"),
        (["--shard-count", "4", "--shard-index-from-env"], ["JOB_COMPLETION_INDEX": "4"], "JOB_COMPLETION_INDEX=4 with --shard-count 4: the shard index 4 must be less than the shard count 4"),
        (["--shard-count", "4", "--shard-index-from-env"], ["JOB_COMPLETION_INDEX": "x1"], "--shard-index-from-env: JOB_COMPLETION_INDEX: 'x1' must be a whole number"),
        (["--shard-count", "4", "--shard-index-from-env"], ["JOB_COMPLETION_INDEX": ""], "JOB_COMPLETION_INDEX: '' must be a whole number"),
    ]

    @Test func invalidShardArgumentsAreRefusedNamingFlagValueAndRule() throws {
        #expect(Self.refusals.count == 20)
        let base = ["score", "--model", "models/sepsis", "--input", "models/sepsis/test_cohort.csv", "--quiet"]
        for c in Self.refusals {
            let r = try CLI.run(base + c.args, environment: c.env)
            #expect(r.status == 2, "\(c.args): exit \(r.status), \(r.stderr)")
            #expect(r.stderr.contains(c.says), "\(c.args): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(c.args): wrote output before refusing")
        }
        // Unset: the variable is named.
        let unset = try CLI.run(base + ["--shard-count", "4", "--shard-index-from-env"], unsetting: ["JOB_COMPLETION_INDEX"])
        #expect(unset.status == 2 && unset.stderr.contains("the environment variable JOB_COMPLETION_INDEX is not set"), "\(unset.stderr)")
    }

    @Test func mergeSummariesRefusesAMissingADuplicatedOrAForeignShard() throws {
        let dir = try TemporaryDirectory("vigil-shard-merge")
        defer { dir.remove() }
        let base = ["score", "--model", "models/sepsis", "--input", "models/sepsis/test_cohort.csv", "--quiet", "--output", dir.file("o.csv").path, "--batch-size", "1000"]
        var files: [String] = []
        for i in 0..<3 {
            files.append(dir.file("s\(i).json").path)
            let r = try CLI.run(base + ["--shard", "\(i)/3", "--summary", files[i]])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let other = dir.file("other.json").path
        let r = try CLI.run(["score", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--quiet", "--output", dir.file("p.csv").path, "--batch-size", "1000", "--shard", "1/3", "--summary", other])
        #expect(r.status == 0, "\(r.stderr)")
        let ok = try CLI.run(["merge-summaries", files[2], files[0], files[1]])
        #expect(ok.status == 0 && ok.stdout.contains("\"rows\":{\"first\":0,\"count\":2864,\"total\":2864,\"batch\":1000}"), "\(ok.stdout) \(ok.stderr)")
        // One file holding all three (a plain concatenation) merges the same.
        let cat = dir.file("all.jsonl").path
        try files.map { try String(contentsOfFile: $0, encoding: .utf8) }.joined().write(toFile: cat, atomically: true, encoding: .utf8)
        let concatenated = try CLI.run(["merge-summaries", cat])
        #expect(concatenated.status == 0 && concatenated.stdout == ok.stdout, "\(concatenated.stderr)")
        let garbage = dir.file("garbage.json").path
        try "{\"summary\":\"vigil-score/1\",\"shard\":{\"index\":1e300,\"count\":3}}\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let refused: [([String], String)] = [
            ([files[0], files[1]], "shard 2/3 is missing"),
            ([files[0], files[1], files[1], files[2]], "is also in"),
            ([files[0], other, files[2]], "the input's sha256 is"),
            ([files[0], garbage, files[2]], "field 'shard.index'"),
        ]
        for (args, says) in refused {
            let m = try CLI.run(["merge-summaries"] + args)
            #expect(m.status == 1 && m.stderr.contains(says), "\(args): \(m.stderr)")
        }
    }
}
