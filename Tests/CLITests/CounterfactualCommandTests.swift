import Foundation
import Testing
import VigilTesting

/// `vigil audit --counterfactual`: the flips it reports equal a brute-force rescoring with
/// `vigil score` of the cohort with the attribute replaced, for a group field the policy uses
/// (readmission race: the threshold changes, the risk cannot) and a feature that is also a group
/// (sepsis Gender: risk and threshold both change).
struct CounterfactualCommandTests {
    /// Records of `vigil score` on a CSV (JSON Lines), by id.
    static func score(_ model: String, _ csv: URL, _ dir: TemporaryDirectory, _ name: String) throws -> [String: [String: Any]] {
        let out = dir.file("\(name).jsonl")
        let r = try CLI.run(["score", "--model", model, "--input", csv.path, "--output", out.path, "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        var byID: [String: [String: Any]] = [:]
        for line in try String(contentsOf: out, encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            byID[o["id"] as! String] = o
        }
        return byID
    }

    /// The cohort with column `column` set to `value` in every row.
    static func replaced(_ src: URL, column: String, value: String, to dst: URL) throws {
        let t = try FixtureTable(contentsOf: src)
        let c = try #require(t.column(column))
        var text = t.header.joined(separator: ",") + "\n"
        for row in t.rows { var r = row; r[c] = value; text += r.joined(separator: ",") + "\n" }
        try text.write(to: dst, atomically: true, encoding: .utf8)
    }

    @Test(arguments: [("readmission", "race", "race", "AfricanAmerican", "Black", false), ("sepsis", "Gender", "sex", "0", "Female", true)])
    func flipsEqualABruteForceRescoring(model: String, column: String, group: String, raw: String, label: String, changesRisk: Bool) throws {
        let dir = try TemporaryDirectory("vigil-cf")
        defer { dir.remove() }
        let pkg = "models/\(model)", cohort = Fixtures.repositoryRoot.appendingPathComponent("\(pkg)/test_cohort.csv")
        let a = try CLI.run(["audit", "--model", pkg, "--input", cohort.path, "--label", "label", "--group", group,
                             "--counterfactual", column, "--json", dir.file("audit.json").path, "--bootstrap", "20", "--quiet"])
        try #require(a.status == 0, "\(a.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("audit.json"))) as? [String: Any])
        let cf = try #require(doc["counterfactual"] as? [String: Any])
        #expect(cf["as_feature"] as? Bool == changesRisk)
        let cells = try #require(cf["cells"] as? [[String: Any]])
        // Brute force: the whole cohort with the attribute set to the target's raw value.
        try Self.replaced(cohort, column: column, value: raw, to: dir.file("swapped.csv"))
        let before = try Self.score(pkg, cohort, dir, "before"), after = try Self.score(pkg, dir.file("swapped.csv"), dir, "after")
        #expect(before.count == after.count && before.count >= 2000)
        var checked = 0
        for from in Set(before.values.compactMap { ($0["group"] as? [String: Any])?[group] as? String }) where from != label {
            let ids = before.keys.filter { (before[$0]!["group"] as? [String: Any])?[group] as? String == from }
            var flips = 0, model = 0, threshold = 0
            for id in ids {
                let b = before[id]!, s = after[id]!
                let d = b["decision"] as! Bool, r = b["risk"] as! Double, t = b["threshold"] as! Double
                let r2 = s["risk"] as! Double, t2 = s["threshold"] as! Double
                if (s["decision"] as! Bool) != d { flips += 1 }
                if (r2 >= t) != d { model += 1 }
                if (r >= t2) != d { threshold += 1 }
            }
            let cell = try #require(cells.first { $0["from"] as? String == from && $0["to"] as? String == label }, "\(from) -> \(label)")
            #expect(cell["n"] as? Int == ids.count)
            #expect(cell["flips"] as? Int == flips && cell["model_flips"] as? Int == model && cell["threshold_flips"] as? Int == threshold,
                    "\(from) -> \(label): audit \(cell), brute force \(flips) / \(model) / \(threshold)")
            if !changesRisk { #expect(model == 0) }
            checked += 1
        }
        #expect(checked >= 1)
    }

    @Test func aBinnedGroupOrAnUnknownFieldIsRefused() throws {
        for (field, rule) in [("age_band", "bins a number"), ("zip", "not a group of model")] {
            let r = try CLI.run(["audit", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--label", "label",
                                 "--group", "race", "--counterfactual", field, "--json", "/dev/null", "--bootstrap", "10", "--quiet"])
            #expect(r.status != 0 && r.stderr.contains(rule), "\(field): \(r.stderr)")
        }
    }
}
