import Foundation
import Testing
import VigilTesting

/// `vigil score` and `vigil inspect` as a user runs them: exit codes, outputs, messages.
struct ScoreCommandTests {
    @Test func scoresTheShippedReadmissionCohort() throws {
        let r = try CLI.run(["score", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first == "encounter_id,risk,group,threshold,threshold_source,decision,warnings")
        let cohortRows = try FixtureTable(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("models/readmission/test_cohort.csv")).rows.count
        #expect(lines.count == cohortRows + 1)
        #expect(r.stderr.contains("scored \(cohortRows) rows with readmission"))
    }

    @Test func writesJSONLinesRecords() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let out = dir.file("out.jsonl")
        let r = try CLI.run(["score", "--model", "models/sepsis", "--input", "models/sepsis/test_cohort.csv", "--output", out.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        let first = try #require(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").first)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        for key in ["id", "model", "risk", "group", "threshold", "threshold_source", "policy", "decision", "warnings"] {
            #expect(obj[key] != nil, "record has \(key)")
        }
        #expect((obj["group"] as? [String: Any])?["sex"] != nil)
    }

    @Test func multiclassOutputsOneColumnPerClass() throws {
        let r = try CLI.run(["score", "--model", "Tests/Fixtures/lightgbm/multiclass/model.txt", "--input", "Tests/Fixtures/lightgbm/multiclass/input.csv"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("id,risk_0,risk_1,risk_2,warnings\n"))
        #expect(r.stderr.contains("warning: no manifest"))
    }

    @Test(arguments: [
        ("csv_text_in_numeric.csv", "field 'chol': value 'abc' is not a number"),
        ("csv_too_few_fields.csv", "fields where the header has 14"),
    ])
    func badInputRowsFailNamingTheProblem(file: String, message: String) throws {
        let r = try CLI.run(["score", "--model", "Tests/Fixtures/lightgbm/heart_binary/model.txt", "--input", "Tests/Fixtures/malformed/\(file)"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: "))
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test(arguments: ["truncated_lightgbm.txt", "truncated_xgboost.json", "truncated.onnx", "not_a_model.txt", "lightgbm_bad_feature_index.txt"])
    func malformedModelsFailWithAMessage(file: String) throws {
        let r = try CLI.run(["score", "--model", "Tests/Fixtures/malformed/\(file)", "--input", "models/readmission/test_cohort.csv"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: "), "\(r.stderr)")
        #expect(r.stderr.contains(file))
    }

    @Test func aMissingFeatureColumnIsNamed() throws {
        let r = try CLI.run(["score", "--model", "models/sepsis", "--input", "models/readmission/test_cohort.csv"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("is not in the header") || r.stderr.contains("are not in the header"), "\(r.stderr)")
    }

    @Test func inspectShowsFormatTreesAndSHA256() throws {
        let r = try CLI.run(["inspect", "--model", "models/sepsis"])
        #expect(r.status == 0, "\(r.stderr)")
        for s in ["LightGBM text", "trees", "leaves", "sha256", "binary (logistic)", "ICULOS"] {
            #expect(r.stdout.contains(s), "inspect shows \(s)")
        }
        let lin = try CLI.run(["inspect", "--model", "models/readmission", "--json"])
        #expect(lin.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(lin.stdout.utf8)) as? [String: Any])
        #expect(obj["format"] as? String == "ONNX")
    }

    @Test func helpDescribesEveryCommand() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        for c in ["score", "inspect", "bench"] { #expect(r.stdout.contains(c)) }
        let score = try CLI.run(["score", "--help"])
        #expect(score.stdout.contains("--model") && score.stdout.contains("--input") && score.stdout.contains("--output"))
    }
}

/// `vigil bench` runs end to end and reports every figure it promises (no timing assertions:
/// speed is measured, not asserted).
struct BenchCommandTests {
    @Test func benchReportsLatencyPercentilesAndThroughput() throws {
        // The conformance input holds two rows with `inf` (LightGBM's own treatment of infinity
        // is checked there); cohort files refuse infinities, so bench reads the other rows.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let text = try String(contentsOfFile: "Tests/Fixtures/lightgbm/heart_binary/input.csv", encoding: .utf8)
        let lines = text.split(separator: "\n").filter { !$0.contains("inf") }
        #expect(lines.count > 200)
        try (lines.joined(separator: "\n") + "\n").write(to: dir.file("input.csv"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["bench", "--model", "Tests/Fixtures/lightgbm/heart_binary/model.txt",
                             "--input", dir.file("input.csv").path,
                             "--rows", "500", "--single-calls", "50", "--batch", "100", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["singleRaw", "singleFull", "batchRawRowsPerSecond", "batchFullRowsPerSecond", "rows", "threads"] {
            #expect(obj[key] != nil, "bench reports \(key)")
        }
        let p = try #require(obj["singleRaw"] as? [String: Double])
        #expect(p["p50"]! <= p["p99"]! && p["p99"]! <= p["max"]!)
    }

    @Test func benchRefusesNonPositiveSizes() throws {
        let r = try CLI.run(["bench", "--model", "Tests/Fixtures/lightgbm/heart_binary/model.txt", "--rows", "0"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("must be > 0"))
    }
}
