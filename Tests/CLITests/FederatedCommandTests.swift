import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Issue 17, federated sites: three sites' summaries (`vigil audit --export-summary`) merged
/// (`vigil audit --merge`) equal a pooled audit on the union for every count-based metric
/// exactly, AUROC lies within the stated bound, and no reported number is below `min_cell`.
struct FederatedCommandTests {
    static func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The shipped readmission cohort split into three sites by row (every third row).
    static func sites(_ dir: TemporaryDirectory) throws -> [URL] {
        let text = try String(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("models/readmission/test_cohort.csv"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        return try (0..<3).map { k in
            let body = lines.dropFirst().enumerated().filter { $0.offset % 3 == k }.map { String($0.element) }
            return try dir.write("site\(k).csv", ([String(lines[0])] + body).joined(separator: "\n") + "\n")
        }
    }

    @Test func threeSitesMergedEqualThePooledAuditAndAUROCIsWithinItsBound() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var summaries: [String] = []
        for (k, site) in try Self.sites(dir).enumerated() {
            let out = dir.file("s\(k).json").path
            let r = try CLI.run(["audit", "--model", "models/readmission", "--input", site.path, "--label", "label", "--group", "sex",
                                 "--export-summary", out, "--site", "hospital-\(k)"])
            #expect(r.status == 0, "\(r.stderr)")
            summaries.append(out)
        }
        let merged = dir.file("merged.json")
        let m = try CLI.run(["audit", "--merge"] + summaries + ["--json", merged.path])
        #expect(m.status == 0 && m.stderr.contains("merged 3 sites"), "\(m.stderr)")
        let pooled = dir.file("pooled.json")
        let p = try CLI.run(["audit", "--model", "models/readmission", "--input", "models/readmission/test_cohort.csv", "--label", "label",
                             "--group", "sex", "--bootstrap", "0", "--json", pooled.path, "--quiet"])
        #expect(p.status == 0, "\(p.stderr)")
        let fed = try Self.json(merged), audit = try Self.json(pooled)
        func auditMetrics(_ group: String?) throws -> [String: Any] {
            if let group {
                let view = try #require((audit["views"] as? [[String: Any]])?.first { $0["name"] as? String == "sex" })
                let g = try #require((view["groups"] as? [[String: Any]])?.first { $0["group"] as? String == group }, "\(group)")
                return try #require(g["metrics"] as? [String: Any])
            }
            return try #require((audit["overall"] as? [String: Any])?["metrics"] as? [String: Any])
        }
        func value(_ m: [String: Any], _ k: String) -> Double? { (m[k] as? [String: Any])?["value"] as? Double }
        let groups = try #require(((fed["views"] as? [String: Any])?["sex"] as? [String: Any]))
        var compared = 0
        for (group, block) in [(nil as String?, fed["overall"])] + groups.map({ ($0.key as String?, $0.value) }) where group != "_suppressed" {
            let pooledBlock = try #require(((block as? [String: Any])?["pooled"]) as? [String: Any])
            let a = try auditMetrics(group)
            for (fk, ak) in [("tpr", "tpr"), ("fpr", "fpr"), ("ppv", "ppv"), ("selection_rate", "selection_rate")] {
                let f = ((pooledBlock[fk] as? [String: Any])?["value"]) as? Double
                #expect(f != nil && f == value(a, ak), "\(group ?? "overall") \(fk): merged \(f ?? .nan) vs pooled \(value(a, ak) ?? .nan)")
                compared += 1
            }
            let auroc = try #require(pooledBlock["auroc"] as? [String: Any])
            let exact = try #require(value(a, "auroc"))
            let (lo, hi) = (auroc["lower"] as! Double, auroc["upper"] as! Double)
            #expect(lo <= exact && exact <= hi, "\(group ?? "overall"): exact AUROC \(exact) outside [\(lo), \(hi)]")
            #expect(abs((auroc["estimate"] as! Double) - exact) <= (auroc["bound"] as! Double))
        }
        #expect(compared >= 8, "overall and both sexes compared: \(compared)")
        // Feature histograms in the manifest's reference buckets add up across sites.
        let features = try #require(fed["features"] as? [String: [String: Any]])
        #expect(features.count == 35, "\(features.keys.sorted())")
        let age = try #require(features["age_years"])
        let pooledAge = try #require(age["pooled"] as? [Int])
        let siteAges = try #require(age["sites"] as? [String: [String: Any]]).values.map { $0["counts"] as! [Int] }
        #expect(siteAges.count == 3 && pooledAge == (0..<pooledAge.count).map { i in siteAges.reduce(0) { $0 + $1[i] } })
        #expect(pooledAge.reduce(0, +) <= 2000 && pooledAge.reduce(0, +) >= 1900, "\(pooledAge)")
        let het = try #require(((fed["overall"] as? [String: Any])?["heterogeneity"] as? [String: Any])?["tpr"] as? [String: Any])
        #expect(het["df"] as? Int == 2 && ((het["i2"] as? Double) ?? -1) >= 0 && ((het["i2"] as? Double) ?? 2) <= 1, "\(het)")
    }

    @Test func noNumberBelowMinCellLeavesASiteAndATamperedSummaryIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let site = try Self.sites(dir)[0]
        let out = dir.file("s.json")
        // race x sex: many small cells, merged into _suppressed.
        let r = try CLI.run(["audit", "--model", "models/readmission", "--input", site.path, "--label", "label", "--group", "race", "--group", "sex",
                             "--export-summary", out.path, "--site", "a", "--min-cell", "11"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try Self.json(out)
        let cells = try #require(s["cells"] as? [[String: Any]])
        #expect((s["suppressed"] as? [String: Any])?["cells"] as? Int ?? 0 > 0, "\(s["suppressed"] ?? "")")
        for c in cells {
            let (tp, fp, tn, fn) = (c["tp"] as! Int, c["fp"] as! Int, c["tn"] as! Int, c["fn"] as! Int)
            #expect(c["n"] as! Int >= 11 && tp + fn >= 11 && fp + tn >= 11, "\(c["labels"] ?? "")")
            for key in ["positive_scores", "negative_scores"] {
                for bin in c[key] as! [[Int]] { #expect(bin[2] >= 11, "\(c["labels"] ?? "") \(key) \(bin)") }
            }
        }
        for f in try #require(s["features"] as? [[String: Any]]) {
            #expect((f["counts"] as! [Int]).allSatisfy { $0 == 0 || $0 >= 11 }, "\(f["name"] ?? "")")
        }
        #expect(!(try String(contentsOf: out, encoding: .utf8)).contains("encounter"), "no id leaves")
        // Each site's file is untrusted input to the merge: tampered copies are refused by name.
        let text = try String(contentsOf: out, encoding: .utf8)
        let firstCellN = try #require(cells.first?["n"] as? Int)
        for (edit, says) in [
            (text.replacingOccurrences(of: "\"min_cell\": 11", with: "\"min_cell\": 11, \"rows\": []"), "unknown key 'rows'"),
            (text.replacingOccurrences(of: "\"n\": \(firstCellN),", with: "\"n\": \(firstCellN + 1),"), "not n ="),
            (text.replacingOccurrences(of: "\"schema\": \"vigil.site_summary/1\"", with: "\"schema\": \"vigil.site_summary/9\""), "is not vigil.site_summary/1"),
            (text.replacingOccurrences(of: "\"score_bins\": 1000", with: "\"score_bins\": 1e300"), "$.score_bins"),
        ] {
            #expect(edit != text, "the edit for \(says) changed nothing")
            let bad = try dir.write("bad.json", edit)
            let m = try CLI.run(["audit", "--merge", bad.path, out.path])
            #expect(m.status == 1 && m.stderr.contains(says) && m.stderr.contains("bad.json"), "\(says): \(m.stderr)")
        }
        // The same site twice, and summaries of another model, do not merge.
        let twice = try CLI.run(["audit", "--merge", out.path, out.path])
        #expect(twice.status == 1 && twice.stderr.contains("same site"), "\(twice.stderr)")
    }
}
