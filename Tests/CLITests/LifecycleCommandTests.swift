import Foundation
import Testing
import VigilEngine
import VigilTesting

/// `vigil validate` and `vigil compare` as a user (or a CI pipeline gating on the exit status) runs them.
struct LifecycleCommandTests {
    static func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func writePlan(_ dir: TemporaryDirectory, name: String, criteria: String, cluster: String? = "patient_id", replicates: Int = 200) throws -> String {
        let path = dir.file(name).path
        try """
            {"schema": "vigil.validation_plan/1", "name": "\(name)", "version": "1", "group_fields": ["sex", "age_band"],
             "bootstrap": {"replicates": \(replicates), "seed": 7}\(cluster.map { ", \"cluster\": \"\($0)\"" } ?? ""), "min_group_size": 50,
             "criteria": [\(criteria)]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let sepsis = ["--model", "models/sepsis", "--input", "models/sepsis/test_cohort.csv", "--label", "label"]

    @Test func validateExitsZeroWhenEveryCriterionPassesAndThreeWhenOneFails() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let lenient = try Self.writePlan(dir, name: "lenient.json", criteria: #"{"id": "auroc", "metric": "auroc", "min": 0.5}, {"id": "size", "view": "sex", "min_rows": 10}"#)
        let ok = try CLI.run(["validate"] + Self.sepsis + ["--plan", lenient, "--json", dir.file("ok.json").path, "--html", dir.file("ok.html").path])
        #expect(ok.status == 0, "\(ok.stderr)")
        let report = try Self.json(dir.file("ok.json"))
        #expect(report["schema"] as? String == "vigil.validation/1" && report["verdict"] as? String == "accepted")
        let boot = try #require(report["bootstrap"] as? [String: Any])
        let cluster = try #require(boot["cluster"] as? [String: Any])
        #expect(cluster["column"] as? String == "patient_id" && (cluster["clusters"] as? Int ?? 0) > 10)
        let results = try #require(report["results"] as? [[String: Any]])
        #expect(results.count == 3)  // overall AUROC, and the size of both sexes
        let html = try String(contentsOf: dir.file("ok.html"), encoding: .utf8)
        #expect(html.contains("ACCEPTED") && !html.contains("<script"))

        let strict = try Self.writePlan(dir, name: "strict.json", criteria: #"{"id": "auroc", "metric": "auroc", "min": 0.5}, {"id": "tpr-groups", "metric": "sensitivity", "view": "sex|age_band", "min": 0.99}"#)
        let bad = try CLI.run(["validate"] + Self.sepsis + ["--plan", strict, "--json", dir.file("bad.json").path])
        #expect(bad.status == 3, "\(bad.stderr)")
        #expect(bad.stderr.contains("FAIL tpr-groups") || bad.stderr.contains("NOT_EVALUABLE tpr-groups"), "\(bad.stderr)")
        let badReport = try Self.json(dir.file("bad.json"))
        #expect(badReport["verdict"] as? String == "not_accepted")
        let lines = try #require(badReport["results"] as? [[String: Any]])
        #expect(lines.filter { $0["id"] as? String == "tpr-groups" }.count == 8, "one line per sex x age band group")
        #expect(lines.first { $0["id"] as? String == "auroc" }?["status"] as? String == "pass")
    }

    @Test func theShippedSepsisPlanRunsOnTheShippedCohort() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run(["validate"] + Self.sepsis + ["--plan", "models/plans/sepsis-monthly.json", "--json", dir.file("v.json").path])
        #expect(r.status == 0 || r.status == 3, "\(r.stderr)")
        let report = try Self.json(dir.file("v.json"))
        let results = try #require(report["results"] as? [[String: Any]])
        #expect((report["verdict"] as? String == "accepted") == (r.status == 0))
        #expect(results.allSatisfy { ["pass", "fail", "not_evaluable", "skipped"].contains($0["status"] as? String ?? "") })
        // Every judged floor names the bound it used.
        for line in results where line["status"] as? String == "fail" {
            let reason = line["reason"] as? String ?? ""
            #expect(reason.contains("bound") || reason.contains("interval") || reason.contains("rows"), "\(line)")
        }
    }

    @Test func validateRefusesAClusterThatDisagreesWithThePlan() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let plan = try Self.writePlan(dir, name: "p.json", criteria: #"{"id": "a", "metric": "auroc", "min": 0.5}"#)
        let r = try CLI.run(["validate"] + Self.sepsis + ["--plan", plan, "--cluster", "row_id", "--json", dir.file("x.json").path])
        #expect(r.status == 2 && r.stderr.contains("differs from the plan"), "\(r.stderr)")
        let noColumn = try Self.writePlan(dir, name: "q.json", criteria: #"{"id": "a", "metric": "auroc", "min": 0.5}"#, cluster: "stay")
        let m = try CLI.run(["validate"] + Self.sepsis + ["--plan", noColumn, "--json", dir.file("y.json").path])
        #expect(m.status != 0 && m.stderr.contains("stay"), "\(m.stderr)")
    }

    @Test func compareSurfacesTheGroupsThatGotWorse() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run(["compare", "--baseline", "models/readmission", "--candidate", "models/readmission-xgb",
                             "--input", "models/readmission/test_cohort.csv", "--label", "label", "--group", "race", "--group", "sex",
                             "--bootstrap", "200", "--json", dir.file("c.json").path, "--html", dir.file("c.html").path])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try Self.json(dir.file("c.json"))
        #expect(report["schema"] as? String == "vigil.compare/1")
        let overall = try #require(report["overall"] as? [String: Any])
        let metrics = try #require(overall["metrics"] as? [String: [String: Any]])
        let auroc = try #require(metrics["auroc"])
        let (a, b, d) = (auroc["baseline"] as! Double, auroc["candidate"] as! Double, auroc["delta"] as! Double)
        #expect(abs(d - (b - a)) < 1e-12)
        let ci = try #require(auroc["delta_ci"] as? [Double])
        #expect(ci[0] <= d && d <= ci[1])
        let findings = try #require(report["findings"] as? [[String: Any]])
        for f in findings {
            let delta = f["delta"] as! Double
            #expect(["fnr", "fpr", "ece"].contains(f["metric"] as! String) ? delta > 0 : delta < 0, "a finding is a change for the worse: \(f)")
        }
        let worse = try #require(report["worse_groups"] as? [[String: Any]])
        #expect(worse.count == Set(findings.map { "\($0["view"]!)=\($0["group"]!)" }).count)
        let flips = try #require(overall["flips"] as? [String: Any])
        #expect((flips["total"] as! Int) == (flips["up"] as! Int) + (flips["down"] as! Int))
        let attribution = try #require(report["attribution"] as? [String: Any])
        #expect((attribution["overall"] as? [[String: Any]])?.count ?? 0 >= 30)
        let html = try String(contentsOf: dir.file("c.html"), encoding: .utf8)
        #expect(html.contains("Which groups got worse") && !html.contains("<script"))
        #expect(r.stderr.contains("overall auroc"))
    }

    @Test func aVersionComparedWithItselfChangesNothingAndAPlanGatesTheExitStatus() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let same = try CLI.run(["compare", "--baseline", "models/readmission", "--candidate", "models/readmission",
                                "--input", "models/readmission/test_cohort.csv", "--label", "label", "--plan", "models/plans/readmission-quarterly.json",
                                "--json", dir.file("s.json").path])
        #expect(same.status == 0, "\(same.stderr)")
        let report = try Self.json(dir.file("s.json"))
        #expect((report["findings"] as? [Any])?.isEmpty == true)
        let ni = try #require(report["non_inferiority"] as? [[String: Any]])
        #expect(!ni.isEmpty && ni.allSatisfy { ["pass", "skipped"].contains($0["status"] as? String ?? "") })
        // A plan fixes the bootstrap: a flag beside it is refused.
        let flag = try CLI.run(["compare", "--baseline", "models/readmission", "--candidate", "models/readmission-xgb",
                                "--input", "models/readmission/test_cohort.csv", "--label", "label", "--plan", "models/plans/readmission-quarterly.json",
                                "--bootstrap", "50", "--json", dir.file("f.json").path])
        #expect(flag.status == 2 && flag.stderr.contains("fixes the bootstrap"), "\(flag.stderr)")
    }

    /// `vigil change-control`: one folder with everything, a PCCP classification from the
    /// packages, SHA256SUMS that check, and an exit status that says whether the change is
    /// acceptable; the readmission change (ONNX logistic -> XGBoost trees) is an architecture
    /// change, outside a plan that allows only retraining.
    @Test func changeControlWritesTheFilingAndFlagsAChangeOutsideThePlan() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        func plan(_ name: String, allowed: String, margins: String) throws -> String {
            let path = dir.file(name).path
            try """
                {"schema": "vigil.validation_plan/1", "name": "\(name)", "version": "1", "group_fields": ["race"],
                 "bootstrap": {"replicates": 100, "seed": 7}, "min_group_size": 50,
                 "criteria": [{"id": "auroc-overall", "metric": "auroc", "min": 0.5}],
                 "non_inferiority": [\(margins)], "allowed_changes": [\(allowed)]}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let args = ["change-control", "--baseline", "models/readmission", "--candidate", "models/readmission-xgb",
                    "--input", "models/readmission/test_cohort.csv", "--label", "label"]
        let narrow = try plan("narrow.json", allowed: #""retrain", "threshold_update""#, margins: #"{"id": "ni-auroc", "metric": "auroc", "margin": 0.5}"#)
        let out = dir.file("cc").path
        let r = try CLI.run(args + ["--plan", narrow, "--out", out, "--training-data", "models/readmission/test_cohort.csv"])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("needs a new submission: architecture"), "\(r.stderr)")
        let filing = try Self.json(dir.file("cc/change-control.json"))
        #expect(filing["schema"] as? String == "vigil.change_control/1" && filing["accepted"] as? Bool == false)
        let classification = try #require(filing["classification"] as? [String: Any])
        let changes = try #require(classification["changes"] as? [[String: Any]])
        #expect(changes.contains { $0["kind"] as? String == "architecture" && $0["allowed"] as? Bool == false }, "\(changes)")
        #expect(changes.contains { $0["kind"] as? String == "threshold_update" && $0["allowed"] as? Bool == true }, "\(changes)")
        #expect(classification["needs_new_submission"] as? Bool == true)
        let baseline = try #require(filing["baseline"] as? [String: Any]), candidate = try #require(filing["candidate"] as? [String: Any])
        #expect((baseline["package_digest"] as? String)?.count == 64 && (candidate["package_digest"] as? String)?.count == 64)
        let data = try #require(filing["data"] as? [String: Any])
        #expect(((data["training_data"] as? [[String: Any]])?.first?["sha256"] as? String)?.count == 64)
        #expect((data["baseline_policy_fitted_on"] as? [String: Any])?["sha256"] is String)
        #expect(!(try #require(filing["groups"] as? [[String: Any]])).isEmpty)
        // Every file but SHA256SUMS is listed, with its SHA-256.
        let sums = try String(contentsOf: dir.file("cc/SHA256SUMS"), encoding: .utf8).split(separator: "\n")
        let listed = Set(sums.map { String($0.split(separator: " ", maxSplits: 1)[1].dropFirst()) })
        for name in ["index.html", "change-control.json", "validation.json", "validation.html", "comparison.json", "comparison.html", "plan.json",
                     "baseline/manifest.json", "baseline/policy.json", "baseline/MODEL_CARD.md", "candidate/manifest.json", "candidate/MODEL_CARD.md"] {
            #expect(listed.contains(name), "\(name) not in SHA256SUMS: \(listed)")
        }
        for line in sums {
            let parts = line.split(separator: " ", maxSplits: 1)
            let file = dir.file("cc/" + String(parts[1].dropFirst()))
            #expect(String(parts[0]) == (try SHA256Digest.hex(ofFileAt: file)), "\(file.path)")
        }
        let html = try String(contentsOf: dir.file("cc/index.html"), encoding: .utf8)
        #expect(html.contains("Group by group") && html.contains("outside the plan: needs a new submission") && !html.contains("<script"))
        #expect(r.stderr.contains("change-control digest \(try ChangeControlDigest.compute(dir: out).hex)"), "\(r.stderr)")
        // A filing is never written into a folder that holds one.
        let again = try CLI.run(args + ["--plan", narrow, "--out", out])
        #expect(again.status == 2 && again.stderr.contains("not empty"), "\(again.stderr)")

        // The same change under a plan that allows it, with criteria it meets: acceptable.
        let wide = try plan("wide.json", allowed: #""retrain", "hyperparameters", "architecture", "threshold_update""#, margins: "")
        let ok = try CLI.run(args + ["--plan", wide, "--out", dir.file("cc2").path])
        #expect(ok.status == 0 && ok.stderr.contains("ACCEPTABLE"), "\(ok.stderr)")
    }
}
