import Foundation
import Testing
import VigilTesting

/// `vigil fit-thresholds` and `vigil audit` as a user runs them.
struct FairnessCommandTests {
    @Test func fitThresholdsWritesAPolicyTheModelLoads() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Fixtures.repositoryRoot.appendingPathComponent("models/readmission"))
        let r = try CLI.run([
            "fit-thresholds", "--model", dir.url.path, "--input", dir.file("test_cohort.csv").path, "--label", "label",
            "--group", "race", "--group", "sex", "--constraint", "tpr_parity", "--objective", "balanced_accuracy",
            "--tolerance", "0.05", "--min-group-size", "50", "--output", dir.file("policy.json").path, "--policy-version", "test-1",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("White|Female") && r.stderr.contains("wrote"))
        let policy = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("policy.json"))) as? [String: Any])
        #expect(policy["group_fields"] as? [String] == ["race", "sex"])
        let fitted = try #require(policy["fitted_on"] as? [String: Any])
        #expect(fitted["rows"] as? Int == 2000)
        let sha = try #require(fitted["sha256"] as? String)
        #expect(sha.count == 64)
        // Scoring with the new policy uses the intersections.
        let s = try CLI.run(["score", "--model", dir.url.path, "--input", dir.file("test_cohort.csv").path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout.contains("group:White|Female") && s.stdout.contains("fallback"))
    }

    @Test func fitThresholdsReadsAScoreColumnWithoutAModel() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run([
            "fit-thresholds", "--input", "Tests/Fixtures/fairness/cohort.csv", "--label", "label", "--scores-column", "risk",
            "--group", "sex", "--constraint", "min_sensitivity", "--target", "0.8", "--output", dir.file("p.json").path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOf: dir.file("p.json"), encoding: .utf8)
        #expect(text.contains("\"kind\": \"min_sensitivity\"") && text.contains("\"target\": 0.8") && text.contains("\"Female\""))
    }

    @Test(arguments: [
        (["--constraint", "parity"], "is not one of"),
        (["--objective", "cost"], "--cost-fn"),
        (["--tolerance", "2"], "--tolerance"),
        (["--group", "zip"], "not one of readmission's group fields"),
    ])
    func fitThresholdsRefusesBadOptions(extra: [String], message: String) throws {
        let r = try CLI.run(["fit-thresholds", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv",
                             "--label", "label", "--output", "/tmp/vigil-never-written.json"] + extra)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func auditWritesJSONAndASelfContainedHTMLReport() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run([
            "audit", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--label", "label",
            "--group", "race", "--group", "sex", "--bootstrap", "40", "--seed", "3", "--reference", "race=White",
            "--json", dir.file("a.json").path, "--html", dir.file("a.html").path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("below the minimum of 30"))
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("a.json"))) as? [String: Any])
        #expect(doc["schema"] as? String == "vigil.audit/1")
        let views = try #require(doc["views"] as? [[String: Any]])
        #expect(views.map { $0["name"] as? String } == ["race", "sex", "race|sex"])
        let race = views[0]
        #expect(race["reference"] as? String == "White")
        let asian = try #require((race["groups"] as? [[String: Any]])?.first { $0["group"] as? String == "Asian" })
        let tpr = try #require((asian["metrics"] as? [String: Any])?["tpr"] as? [String: Any])
        #expect(tpr["value"] is NSNull)
        #expect((tpr["reason"] as? String)?.contains("no positive") == true)
        let white = try #require((race["groups"] as? [[String: Any]])?.first { $0["group"] as? String == "White" })
        let wt = try #require((white["metrics"] as? [String: Any])?["tpr"] as? [String: Any])
        #expect((wt["ci"] as? [Double])?.count == 2)
        let html = try String(contentsOf: dir.file("a.html"), encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("ROC curves") && html.contains("Calibration") && html.contains("Threshold trade-off"))
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"))
        #expect(!html.contains("NaN"))
    }

    @Test func auditWithAGlobalThresholdAndNoModel() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run([
            "audit", "--input", "Tests/Fixtures/fairness/cohort.csv", "--label", "label", "--scores-column", "risk",
            "--group", "sex", "--threshold", "0.11", "--bootstrap", "0", "--json", dir.file("a.json").path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let noThreshold = try CLI.run(["audit", "--input", "Tests/Fixtures/fairness/cohort.csv", "--label", "label",
                                       "--scores-column", "risk", "--group", "sex", "--json", dir.file("b.json").path])
        #expect(noThreshold.status == 2 && noThreshold.stderr.contains("--threshold"))
    }
}
