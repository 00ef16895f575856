import Foundation
import Testing
import VigilTesting

/// `vigil audit --attribution`: each group's mean contribution and mean |contribution| per feature
/// equal the means over `vigil score --explain all`'s records of that group (the same explainer),
/// and each difference from the reference group lies inside its bootstrap interval.
struct AttributionByGroupCommandTests {
    @Test func groupMeansEqualTheRecordsOfExplainAll() throws {
        let dir = try TemporaryDirectory("vigil-attr")
        defer { dir.remove() }
        let cohort = "models/readmission/test_cohort.csv"
        let a = try CLI.run(["audit", "--model", "models/readmission", "--input", cohort, "--label", "label", "--group", "race", "--group", "sex",
                             "--attribution", "--json", dir.file("audit.json").path, "--bootstrap", "100", "--quiet"])
        try #require(a.status == 0, "\(a.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("audit.json"))) as? [String: Any])
        let at = try #require(doc["attribution_by_group"] as? [String: Any])
        #expect(at["space"] as? String == "log-odds")
        let s = try CLI.run(["score", "--model", "models/readmission", "--input", cohort, "--explain", "all", "--output", dir.file("r.jsonl").path, "--quiet"])
        try #require(s.status == 0, "\(s.stderr)")
        // By field and group: sums of contribution and |contribution| per feature, and counts.
        var sums: [String: [String: [String: (Double, Double)]]] = [:], counts: [String: [String: Int]] = [:]
        for line in try String(contentsOf: dir.file("r.jsonl"), encoding: .utf8).split(separator: "\n") {
            let r = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let groups = try #require(r["group"] as? [String: String])
            let contributions = try #require((r["attribution"] as? [String: Any])?["contributions"] as? [[String: Any]])
            for field in ["race", "sex"] {
                let g = groups[field]!
                counts[field, default: [:]][g, default: 0] += 1
                for c in contributions {
                    let f = c["feature"] as! String, phi = c["contribution"] as! Double
                    let old = sums[field, default: [:]][g, default: [:]][f] ?? (0, 0)
                    sums[field, default: [:]][g, default: [:]][f] = (old.0 + phi, old.1 + abs(phi))
                }
            }
        }
        let views = try #require(at["views"] as? [[String: Any]])
        #expect(views.map { $0["field"] as? String } == ["race", "sex"])
        var compared = 0
        for v in views {
            let field = v["field"] as! String
            for g in try #require(v["groups"] as? [[String: Any]]) {
                let label = g["group"] as! String, n = g["n"] as! Int
                #expect(counts[field]?[label] == n, "\(field) \(label)")
                let meanAbs = g["mean_abs"] as! [String: Double], mean = g["mean"] as! [String: Double]
                for (f, (sum, sumAbs)) in sums[field]![label]! {
                    #expect(abs(meanAbs[f]! - sumAbs / Double(n)) <= 1e-9 * max(1, abs(meanAbs[f]!)), "\(field) \(label) \(f) mean |phi|")
                    #expect(abs(mean[f]! - sum / Double(n)) <= 1e-9, "\(field) \(label) \(f) mean phi")
                    compared += 1
                }
            }
            // Each difference is the group's mean |phi| minus the reference's, with an interval.
            let reference = try #require(v["reference"] as? String)
            let groups = try #require(v["groups"] as? [[String: Any]])
            func meanAbs(_ label: String, _ f: String) -> Double { (groups.first { $0["group"] as? String == label }!["mean_abs"] as! [String: Double])[f]! }
            let diffs = v["differences_in_mean_abs"] as? [[String: Any]] ?? []
            #expect(diffs.count == groups.count - 1)
            for d in diffs {
                let label = d["group"] as! String
                for (f, x) in d["features"] as! [String: [String: Double]] {
                    #expect(abs(x["difference"]! - (meanAbs(label, f) - meanAbs(reference, f))) <= 1e-12, "\(label) \(f)")
                    #expect(x["lower"]! <= x["upper"]!)
                }
            }
        }
        #expect(compared >= 35 * 6)
        let html = try CLI.run(["audit", "--model", "models/readmission", "--input", cohort, "--label", "label", "--group", "race",
                                "--attribution", "--html", dir.file("a.html").path, "--bootstrap", "20", "--quiet"])
        #expect(html.status == 0)
        #expect(try String(contentsOf: dir.file("a.html"), encoding: .utf8).contains("<h2>Attribution by group</h2>"))
    }
}
