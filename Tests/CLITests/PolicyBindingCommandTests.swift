import Foundation
import Testing
import VigilTesting

/// Issue 18 as a user meets it: `vigil score`, `inspect`, `audit` and `serve` refuse a policy
/// fitted for another model, naming both hashes; an unbound policy loads with one warning;
/// `fit-thresholds` binds what it writes; `inspect` shows the package digest.
struct PolicyBindingCommandTests {
    static let root = Fixtures.repositoryRoot

    static func json(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// A package's model file SHA-256 as its manifest records it (checked against the file at
    /// every load, PackageLoadingTests).
    static func modelSHA256(_ name: String) throws -> String {
        let manifest = try json(root.appendingPathComponent("models/\(name)/manifest.json"))
        return (manifest["model"] as! [String: Any])["sha256"] as! String
    }

    /// A copy of readmission-xgb whose policy.json is readmission's.
    static func mismatchedPackage() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try dir.copyContents(of: root.appendingPathComponent("models/readmission-xgb"))
        try FileManager.default.removeItem(at: dir.file("policy.json"))
        try FileManager.default.copyItem(at: root.appendingPathComponent("models/readmission/policy.json"), to: dir.file("policy.json"))
        return dir
    }

    @Test func scoreRefusesAnotherModelsPolicyNamingBothHashes() throws {
        let readmission = try Self.modelSHA256("readmission"), xgb = try Self.modelSHA256("readmission-xgb")
        // As --policy...
        let r = try CLI.run(["score", "--model", "models/readmission-xgb", "--policy", "models/readmission/policy.json",
                             "--input", "models/readmission-xgb/test_cohort.csv", "--quiet"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains("models/readmission/policy.json: this policy was fitted for 'readmission' 1.0.0"), "\(r.stderr)")
        #expect(r.stderr.contains(readmission) && r.stderr.contains(xgb), "\(r.stderr)")
        #expect(r.stdout.isEmpty, "nothing is scored")
        // ...and as the package's own policy.json.
        let dir = try Self.mismatchedPackage()
        defer { dir.remove() }
        let p = try CLI.run(["score", "--model", dir.url.path, "--input", "models/readmission-xgb/test_cohort.csv", "--quiet"])
        #expect(p.status == 1)
        #expect(p.stderr.contains(dir.file("policy.json").path) && p.stderr.contains(readmission) && p.stderr.contains(xgb), "\(p.stderr)")
    }

    @Test(arguments: [
        ["inspect", "--model", "DIR"],
        ["audit", "--model", "DIR", "--input", "models/readmission-xgb/test_cohort.csv", "--label", "label", "--group", "race", "--bootstrap", "10", "--json", "JSON"],
        ["serve", "--model", "DIR", "--socket", "SOCKET"],
    ])
    func everyCommandThatAttachesAPolicyRefusesAnotherModels(_ template: [String]) throws {
        let dir = try Self.mismatchedPackage()
        defer { dir.remove() }
        let args = template.map { $0 == "DIR" ? dir.url.path : $0 == "SOCKET" ? dir.file("vigil.sock").path : $0 == "JSON" ? dir.file("audit.json").path : $0 }
        let readmission = try Self.modelSHA256("readmission"), xgb = try Self.modelSHA256("readmission-xgb")
        let r = try CLI.run(args)
        #expect(r.status == 1, "\(args[0]): \(r.stdout.prefix(200)) \(r.stderr)")
        #expect(r.stderr.contains(readmission) && r.stderr.contains(xgb), "\(args[0]): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("vigil.sock").path), "serve never listened")
        #expect(!FileManager.default.fileExists(atPath: dir.file("audit.json").path), "no audit was written")
    }

    @Test func anUnboundPolicyScoresWithOneWarningAndInspectSaysSo() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.root.appendingPathComponent("models/readmission"))
        var policy = try Self.json(dir.file("policy.json"))
        policy["model"] = nil
        try JSONSerialization.data(withJSONObject: policy).write(to: dir.file("policy.json"))
        let r = try CLI.run(["score", "--model", dir.url.path, "--input", "models/readmission/test_cohort.csv", "--output", dir.file("out.csv").path])
        #expect(r.status == 0, "\(r.stderr)")
        let warnings = r.stderr.split(separator: "\n").filter { $0.contains("does not name the model it was fitted for") }
        #expect(warnings.count == 1, "\(r.stderr)")
        #expect(warnings.first?.hasPrefix("warning: ") == true)
        let i = try CLI.run(["inspect", "--model", dir.url.path, "--json"])
        #expect(i.status == 0, "\(i.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any])
        #expect(object["policy_bound"] as? Bool == false)
        #expect(object["policy_model"] is NSNull)
        #expect((object["warnings"] as? [String])?.contains { $0.contains("does not name the model") } == true)
    }

    @Test func inspectShowsTheBindingAndThePackageDigest() throws {
        let r = try CLI.run(["inspect", "--model", "models/sepsis", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let sha = try Self.modelSHA256("sepsis")
        #expect(object["policy_bound"] as? Bool == true)
        #expect((object["policy_model"] as? [String: Any])?["sha256"] as? String == sha)
        let digest = try #require(object["package_digest"] as? String)
        #expect(digest.count == 64 && digest.allSatisfy { "0123456789abcdef".contains($0) })
        let files = try #require(object["package_files"] as? [[String: Any]])
        #expect(files.compactMap { $0["path"] as? String } == ["MODEL_CARD.md", "manifest.json", "model.txt", "policy.json"])
        #expect(files.first { $0["path"] as? String == "model.txt" }?["sha256"] as? String == sha)
        // The documented coreutils command gives the same digest.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/sha256sum") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "cd models/sepsis && sha256sum MODEL_CARD.md manifest.json model.txt policy.json | sha256sum"]
            p.currentDirectoryURL = Self.root
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(text.hasPrefix(digest + "  -"), "sha256sum: \(text)")
        }
        let t = try CLI.run(["inspect", "--model", "models/sepsis"])
        #expect(t.stdout.contains("package digest") && t.stdout.contains(digest), "\(t.stdout.prefix(2000))")
        #expect(t.stdout.contains("policy fitted for") && t.stdout.contains(sha))
        // A bare model file has none.
        let bare = try CLI.run(["inspect", "--model", "models/sepsis/model.txt", "--json"])
        let bareObject = try #require(try JSONSerialization.jsonObject(with: Data(bare.stdout.utf8)) as? [String: Any])
        #expect(bareObject["package_digest"] is NSNull)
    }

    @Test func fitThresholdsBindsThePolicyAndARefitAfterRetrainingIsNotStoppedByTheOldOne() throws {
        // readmission-xgb "retrained": its package holds a policy fitted for another model file.
        let dir = try Self.mismatchedPackage()
        defer { dir.remove() }
        let xgb = try Self.modelSHA256("readmission-xgb")
        #expect(try CLI.run(["score", "--model", dir.url.path, "--input", "models/readmission-xgb/test_cohort.csv", "--quiet"]).status == 1)
        let fit = try CLI.run([
            "fit-thresholds", "--model", dir.url.path, "--input", "models/readmission-xgb/test_cohort.csv", "--label", "label",
            "--group", "race", "--constraint", "tpr_parity", "--min-group-size", "50", "--output", dir.file("policy.json").path,
        ])
        #expect(fit.status == 0, "\(fit.stderr)")
        #expect(fit.stderr.contains("bound to readmission-xgb 1.0.0 (model sha256 \(xgb))"), "\(fit.stderr)")
        let policy = try Self.json(dir.file("policy.json"))
        let model = try #require(policy["model"] as? [String: Any])
        #expect(model["sha256"] as? String == xgb)
        #expect(model["name"] as? String == "readmission-xgb" && model["version"] as? String == "1.0.0")
        // The refitted policy loads with its model, without the unbound warning.
        let s = try CLI.run(["score", "--model", dir.url.path, "--input", "models/readmission-xgb/test_cohort.csv", "--output", dir.file("out.csv").path])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(!s.stderr.contains("does not name the model"), "\(s.stderr)")
    }

    @Test func aPolicyFittedFromAScoresColumnNamesNoModel() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = try CLI.run([
            "fit-thresholds", "--input", "Tests/Fixtures/fairness/cohort.csv", "--label", "label", "--scores-column", "risk",
            "--group", "sex", "--output", dir.file("p.json").path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("names no model"), "\(r.stderr)")
        let policy = try Self.json(dir.file("p.json"))
        #expect(policy["model"] == nil)
    }
}
