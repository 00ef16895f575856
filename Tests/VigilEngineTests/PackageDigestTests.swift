import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Issue 18: one package digest over the manifest, model file, policy and model card, as
/// docs/FORMATS.md defines it (the SHA-256 of the sorted `sha256sum` lines), recomputed here
/// from the files and, where coreutils is installed, by the documented shell command.
struct PackageDigestTests {
    static func package(_ name: String) -> URL { Fixtures.repositoryRoot.appendingPathComponent("models/\(name)") }

    /// The documented recipe, written out independently of `PackageDigest`: hash each file,
    /// make `"<hex>  <name>\n"` lines, sort them by name as bytes, hash the text.
    static func recompute(_ dir: URL, files: [String]) throws -> String {
        let lines = try files
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { "\(try SHA256Digest.hex(ofFileAt: dir.appendingPathComponent($0)))  \($0)\n" }
            .joined()
        return SHA256Digest.hex(of: Data(lines.utf8))
    }

    /// `cd DIR && sha256sum FILES... | sha256sum`, or nil without coreutils.
    static func coreutils(_ dir: URL, files: [String]) throws -> String? {
        let tool = ["/usr/bin/sha256sum", "/bin/sha256sum"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tool else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        let names = files.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { "'\($0)'" }.joined(separator: " ")
        p.arguments = ["-c", "\(tool) \(names) | \(tool)"]
        p.currentDirectoryURL = dir
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init)
    }

    static func fourFiles(_ model: VigilModel) throws -> [String] {
        let manifest = try #require(model.manifest)
        return ["manifest.json", manifest.modelFile, "policy.json", "MODEL_CARD.md"]
    }

    @Test(arguments: ["readmission", "readmission-xgb", "sepsis", "retinopathy"])
    func theDigestFollowsTheDocumentedRecipe(_ name: String) throws {
        let model = try VigilModel.load(path: Self.package(name).path)
        let files = try Self.fourFiles(model)
        let digest = try #require(model.packageDigest)
        let expected = try Self.recompute(Self.package(name), files: files)
        #expect(digest == expected)
        #expect(model.packageContents?.files.map(\.path) == files.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        if let shell = try Self.coreutils(Self.package(name), files: files) {
            #expect(digest == shell, "\(name): sha256sum gives \(shell)")
        }
    }

    @Test func theDigestChangesWhenAnyOneFileChanges() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        let base = try #require(try VigilModel.load(path: dir.url.path).packageDigest)
        // Manifest, policy and card: one byte more (trailing white space keeps the JSON valid);
        // each changes the digest alone, and restoring the file restores it.
        for file in ["manifest.json", "policy.json", "MODEL_CARD.md"] {
            let original = try Data(contentsOf: dir.file(file))
            try (original + Data(" ".utf8)).write(to: dir.file(file))
            let changed = try #require(try VigilModel.load(path: dir.url.path).packageDigest)
            #expect(changed != base, "\(file): the digest did not change")
            let expected = try Self.recompute(dir.url, files: ["manifest.json", "model.onnx", "policy.json", "MODEL_CARD.md"])
            #expect(changed == expected)
            try original.write(to: dir.file(file))
            #expect(try VigilModel.load(path: dir.url.path).packageDigest == base)
        }
        // The model file cannot change alone in a package that loads (the manifest and the
        // policy's binding name its hash), so its line is changed in the digest itself: each
        // file's hash and name count.
        let files = try #require(try VigilModel.load(path: dir.url.path).packageContents?.files)
        #expect(PackageDigest(files: files).hex == base)
        for i in files.indices {
            var edited = files
            let sha = edited[i].sha256
            edited[i] = .init(path: edited[i].path, sha256: String(sha.dropLast()) + (sha.last == "0" ? "1" : "0"))
            #expect(PackageDigest(files: edited).hex != base, "\(files[i].path): a changed hash left the digest alone")
            var renamed = files
            renamed[i] = .init(path: renamed[i].path + "x", sha256: renamed[i].sha256)
            #expect(PackageDigest(files: renamed).hex != base, "\(files[i].path): a changed name left the digest alone")
        }
        // The order the files are given in does not matter.
        #expect(PackageDigest(files: files.reversed()).hex == base)
    }

    @Test func aRetrainedModelFileChangesTheDigest() throws {
        // A readmission-xgb package whose model file gains a trailing space (the JSON still
        // loads), with the manifest and the policy's binding updated to match: a new digest.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission-xgb"))
        let before = try VigilModel.load(path: dir.url.path)
        try (try Data(contentsOf: dir.file("model.json")) + Data(" ".utf8)).write(to: dir.file("model.json"))
        let sha = try SHA256Digest.hex(ofFileAt: dir.file("model.json"))
        // Until the policy is rebound, the package does not load.
        let manifestText = try String(contentsOf: dir.file("manifest.json"), encoding: .utf8)
        try manifestText.replacingOccurrences(of: before.sha256, with: sha).write(to: dir.file("manifest.json"), atomically: true, encoding: .utf8)
        let stale = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(stale?.message.contains(before.sha256) == true && stale?.message.contains(sha) == true, "\(stale?.message ?? "")")
        let policyText = try String(contentsOf: dir.file("policy.json"), encoding: .utf8)
        try policyText.replacingOccurrences(of: before.sha256, with: sha).write(to: dir.file("policy.json"), atomically: true, encoding: .utf8)
        let after = try VigilModel.load(path: dir.url.path)
        #expect(after.sha256 == sha && after.policy.modelBinding?.sha256 == sha)
        #expect(after.packageDigest != before.packageDigest)
        let expected = try Self.recompute(dir.url, files: ["manifest.json", "model.json", "policy.json", "MODEL_CARD.md"])
        #expect(after.packageDigest == expected)
    }

    @Test func aPackageDigestsOnlyTheFilesItHolds() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        try FileManager.default.removeItem(at: dir.file("MODEL_CARD.md"))
        let noCard = try VigilModel.load(path: dir.url.path)
        #expect(noCard.packageContents?.files.map(\.path) == ["manifest.json", "model.onnx", "policy.json"])
        let three = try Self.recompute(dir.url, files: ["manifest.json", "model.onnx", "policy.json"])
        #expect(noCard.packageDigest == three)
        try FileManager.default.removeItem(at: dir.file("policy.json"))
        let neither = try VigilModel.load(path: dir.url.path)
        let two = try Self.recompute(dir.url, files: ["manifest.json", "model.onnx"])
        #expect(neither.packageDigest == two)
    }

    @Test func aPolicyGivenInsteadTakesThePolicysLine() throws {
        // --policy FILE: the digest is that of the package with FILE as its policy.json.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        let other = try TemporaryDirectory()
        defer { other.remove() }
        var policy = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("policy.json"))) as! [String: Any]
        policy["version"] = "3"
        let file = other.file("candidate.json")
        try JSONSerialization.data(withJSONObject: policy).write(to: file)
        let overridden = try VigilModel.load(path: dir.url.path, policy: .file(file.path))
        #expect(overridden.policy.version == "3")
        try FileManager.default.removeItem(at: dir.file("policy.json"))
        try FileManager.default.copyItem(at: file, to: dir.file("policy.json"))
        let copied = try VigilModel.load(path: dir.url.path)
        #expect(overridden.packageDigest == copied.packageDigest)
    }

    @Test func aBareModelFileHasNoPackageDigest() throws {
        let model = try VigilModel.load(path: Fixtures.url("lightgbm/heart_binary/model.txt").path)
        #expect(model.packageDigest == nil && model.packageContents == nil)
        #expect(model.sha256.count == 64)
    }

    @Test(arguments: ["policy.json", "MODEL_CARD.md", "manifest.json", "a\\b.txt", "model\n.txt"])
    func aModelFileNameTheDigestCannotListIsRefused(_ name: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.file("manifest.json"))) as! [String: Any]
        var model = manifest["model"] as! [String: Any]
        model["file"] = name
        manifest["model"] = model
        try JSONSerialization.data(withJSONObject: manifest).write(to: dir.file("manifest.json"))
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.message.contains("$.model.file") == true, "\(error?.message ?? "")")
    }
}
