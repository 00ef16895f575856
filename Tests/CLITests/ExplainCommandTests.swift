import Foundation
import Testing
import VigilTesting

/// `vigil score --explain`: columns and JSON shapes as documented in RecordWriter, for binary,
/// multiclass, linear and tree models; output without --explain is unchanged.
struct ExplainCommandTests {
    static func csv(_ text: String) -> (header: [String], rows: [[String]]) {
        // No field in these outputs holds a quoted comma except `group`/`warnings`, which the
        // tests below do not read; split on commas outside quotes.
        func split(_ line: Substring) -> [String] {
            var fields: [String] = [], cur = "", quoted = false
            for ch in line {
                if ch == "\"" { quoted.toggle(); continue }
                if ch == ",", !quoted { fields.append(cur); cur = ""; continue }
                cur.append(ch)
            }
            fields.append(cur)
            return fields
        }
        let lines = text.split(separator: "\n")
        return (split(lines[0]), lines.dropFirst().map(split))
    }

    static func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }

    @Test func topKAddsOneColumnOrderedByMagnitude() throws {
        let r = try CLI.run(["score", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--explain", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        let (header, rows) = Self.csv(r.stdout)
        #expect(header == ["encounter_id", "risk", "group", "threshold", "threshold_source", "decision", "warnings", "top_contributions"])
        for row in rows.prefix(50) {
            let items = row[7].split(separator: ";").map { $0.split(separator: "=") }
            #expect(items.count == 3)
            let values = items.map { Double($0[1])! }
            #expect(zip(values, values.dropFirst()).allSatisfy { abs($0) >= abs($1) })
            #expect(items.allSatisfy { $0[1].hasPrefix("+") || $0[1].hasPrefix("-") })
        }
    }

    @Test func allAddsAContributionPerFeatureThatSumsToTheMargin() throws {
        let r = try CLI.run(["score", "--model", "Tests/Fixtures/xgboost/heart_binary/model.json", "--input", "Tests/Fixtures/xgboost/heart_binary/input.csv", "--explain", "all"])
        #expect(r.status == 0, "\(r.stderr)")
        let (header, rows) = Self.csv(r.stdout)
        let contrib = header.indices.filter { header[$0].hasPrefix("contrib_") }
        #expect(contrib.count == 14 && header.last == "contrib_bias" && header.contains("contrib_chol"))
        let risk = try #require(header.firstIndex(of: "risk"))
        for row in rows {
            let margin = contrib.map { Double(row[$0])! }.reduce(0, +)
            #expect(abs(Self.sigmoid(margin) - Double(row[risk])!) <= 1e-6)
        }
    }

    @Test func jsonLinesShowMissingValuesAsNull() throws {
        let r = try CLI.run(["score", "--model", "Tests/Fixtures/lightgbm/missing_nan/model.txt", "--input", "Tests/Fixtures/lightgbm/missing_nan/input.csv",
                             "--output-format", "jsonl", "--explain", "all", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        var nulls = 0
        for line in r.stdout.split(separator: "\n") {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let a = try #require(obj["attribution"] as? [String: Any])
            #expect(a["space"] as? String == "log-odds" && a["method"] as? String == "tree-shap")
            let items = try #require(a["contributions"] as? [[String: Any]])
            #expect(items.map { $0["feature"] as? String } == (0..<5).map { "Column_\($0)" })
            let base = try #require(a["base"] as? Double)
            let margin = base + items.compactMap { $0["contribution"] as? Double }.reduce(0, +)
            #expect(abs(Self.sigmoid(margin) - (obj["risk"] as! Double)) <= 1e-9)
            nulls += items.filter { $0["value"] is NSNull }.count
        }
        #expect(nulls > 50)
    }

    @Test func multiclassModelsExplainEachClass() throws {
        let args = ["score", "--model", "Tests/Fixtures/lightgbm/multiclass/model.txt", "--input", "Tests/Fixtures/lightgbm/multiclass/input.csv", "--quiet"]
        let top = try CLI.run(args + ["--explain", "2"])
        #expect(top.status == 0, "\(top.stderr)")
        #expect(top.stdout.hasPrefix("id,risk_0,risk_1,risk_2,warnings,top_contributions_0,top_contributions_1,top_contributions_2\n"))
        let all = try CLI.run(args + ["--explain", "all"])
        let (header, _) = Self.csv(all.stdout)
        #expect(header.filter { $0.hasPrefix("contrib_") }.count == 3 * 14)
        #expect(header.contains("contrib_2_bias") && header.contains("contrib_0_age"))
        let json = try CLI.run(args + ["--explain", "1", "--output-format", "jsonl"])
        let first = try #require(json.stdout.split(separator: "\n").first)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        let classes = try #require((obj["attribution"] as? [String: Any])?["classes"] as? [[String: Any]])
        #expect(classes.count == 3 && classes.allSatisfy { ($0["top"] as? [Any])?.count == 1 && $0["base"] is Double })
    }

    @Test func withoutExplainNothingChanges() throws {
        let r = try CLI.run(["score", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--output-format", "jsonl", "--quiet"])
        #expect(r.status == 0)
        #expect(!r.stdout.contains("attribution"))
    }

    @Test func badExplainValuesAreUsageErrors() throws {
        for value in ["0", "-2", "some"] {
            let r = try CLI.run(["score", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--explain=\(value)"])
            #expect(r.status == 2, "\(value)")
            #expect(r.stderr.contains("--explain takes 'all' or a whole number"), "\(r.stderr)")
        }
    }

    @Test func aFeatureNamedBiasCannotShareTheBiasColumn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try dir.write("m.linear.json", """
            {"format": "vigil-linear", "version": 1, "link": "logistic", "features": ["bias", "x"],
             "coefficients": [0.5, -1], "intercept": 0.25}
            """)
        let input = try dir.write("in.csv", "id,bias,x\na,1,2\n")
        let r = try CLI.run(["score", "--model", model.path, "--input", input.path, "--explain", "all"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("contrib_bias"), "\(r.stderr)")
        let jsonl = try CLI.run(["score", "--model", model.path, "--input", input.path, "--explain", "all", "--output-format", "jsonl", "--quiet"])
        #expect(jsonl.status == 0, "\(jsonl.stderr)")
        #expect(jsonl.stdout.contains("\"feature\":\"bias\""))
    }

    @Test func benchTimesAttributions() throws {
        let r = try CLI.run(["bench", "--model", "Tests/Fixtures/lightgbm/stumps/model.txt", "--rows", "200", "--batch", "100",
                             "--single-calls", "20", "--explain", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(obj["explainMethod"] as? String == "tree-shap")
        #expect((obj["batchExplainRowsPerSecond"] as? Double ?? 0) > 0)
        #expect((obj["singleExplain"] as? [String: Any])?["p50"] is Double)
        let plain = try CLI.run(["bench", "--model", "Tests/Fixtures/lightgbm/stumps/model.txt", "--rows", "200", "--batch", "100", "--single-calls", "20"])
        #expect(plain.status == 0 && !plain.stdout.contains("attribution"))
    }

    @Test func linearModelsWithoutMeansSayE0() throws {
        let r = try CLI.run(["score", "--model", "Tests/Fixtures/linear/json/model.linear.json", "--input", "Tests/Fixtures/linear/json/input.csv", "--explain", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: no feature means") && r.stderr.contains("E[x] = 0"))
    }
}
