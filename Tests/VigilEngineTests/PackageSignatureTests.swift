import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Issue 18, signatures: a record written by `PackageSignatures.sign` verifies against the
/// package and the trusted keys; a tampered package, policy or record, an untrusted key and a
/// malformed record file are each refused, naming the field and the rule; the package digest
/// does not cover `signatures/`; the change-control digest follows its documented recipe.
/// Shipped packages are copied to a temporary folder before anything is changed.
struct PackageSignatureTests {
    /// A copy of a shipped package, a signing key pair and a trusted-keys folder holding only
    /// the public key.
    struct Signed {
        let dir: TemporaryDirectory
        let keys: TemporaryDirectory
        let trustedDir: URL
        var package: String { dir.url.path }
        var privateKey: String { keys.file("alice.key").path }

        init(_ name: String = "readmission") throws {
            dir = try TemporaryDirectory("vigil-sign")
            try dir.copyContents(of: Fixtures.repositoryRoot.appendingPathComponent("models/\(name)"))
            keys = try TemporaryDirectory("vigil-sign-keys")
            _ = try Ed25519SigningKey.generate(into: keys.url.path, name: "alice")
            trustedDir = keys.file("trusted")
            try FileManager.default.createDirectory(at: trustedDir, withIntermediateDirectories: false)
            try FileManager.default.copyItem(at: keys.file("alice.pub"), to: trustedDir.appendingPathComponent("alice.pub"))
        }

        func trusted() throws -> TrustedKeys { try TrustedKeys(dir: trustedDir.path) }

        @discardableResult
        func sign(signer: String = "Jane Doe", role: String = "clinical safety officer", meaning: String = "approved for production", key: String? = nil) throws -> String {
            let model = try VigilModel.load(path: package)
            let k = try Ed25519SigningKey(file: key ?? privateKey, what: "--key")
            return try PackageSignatures.sign(model: model, key: k, signer: signer, role: role, meaning: meaning).path
        }

        func checks() throws -> [SignatureCheck] {
            let model = try VigilModel.load(path: package)
            return try PackageSignatures.checkAll(model: model, packageDir: try #require(model.packageURL), trustedKeys: try trusted())
        }

        func remove() {
            dir.remove()
            keys.remove()
        }
    }

    /// Replaces the first `old` in a file (failing the test when absent).
    static func replace(_ url: URL, _ old: String, _ new: String) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        let range = try #require(text.range(of: old), "\(url.lastPathComponent) has no '\(old)'")
        try text.replacingCharacters(in: range, with: new).write(to: url, atomically: true, encoding: .utf8)
    }

    /// Edits the signature record's JSON (a top-level field) and writes it back.
    static func edit(_ path: String, _ change: (inout [String: Any]) -> Void) throws {
        var o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        change(&o)
        try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
    }

    @Test func aSignedPackageVerifiesAndTheDigestDoesNotCoverSignatures() throws {
        let s = try Signed()
        defer { s.remove() }
        let before = try VigilModel.load(path: s.package)
        let path = try s.sign()
        #expect(path.hasPrefix(s.dir.file("signatures").path + "/jane-doe-") && path.hasSuffix("Z.json"), "\(path)")
        let after = try VigilModel.load(path: s.package)
        #expect(after.packageDigest == before.packageDigest, "signatures/ must not change the package digest")
        #expect(after.packageContents?.files.map(\.path) == ["MODEL_CARD.md", "manifest.json", "model.onnx", "policy.json"])
        let checks = try s.checks()
        #expect(checks.count == 1)
        let c = try #require(checks.first)
        #expect(c.isValid, "\(c.problem ?? "")")
        let r = try #require(c.record)
        #expect(r.packageDigest == before.packageDigest && r.modelSHA256 == before.sha256 && r.policySHA256 == before.policy.sha256)
        #expect(r.signer == "Jane Doe" && r.role == "clinical safety officer" && r.meaning == "approved for production")
        #expect(PackageSignature.isTime(r.time) && r.changeControlDigest == nil)
        #expect(c.fileSHA256 == (try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: path))))
        // admit in strict mode qualifies the package with that record.
        let admission = try PackageSignatures.admit(model: after, trustedKeys: try s.trusted(), required: true)
        #expect(admission.signatureSHA256 == c.fileSHA256)
        // The written JSON reads back to the same record, and the signed text is the documented one.
        #expect(try PackageSignature.parse(Data(contentsOf: URL(fileURLWithPath: path))) == r)
        let text = String(decoding: r.canonicalMessage, as: UTF8.self)
        #expect(text.hasPrefix("vigil-package-signature:v1\npackage_digest: \"\(r.packageDigest)\"\nmodel_name: \"readmission\"\n"), "\(text)")
        #expect(text.hasSuffix("key_id: \"\(r.keyID)\"\n"))
        #expect(text.split(separator: "\n").count == 13)
    }

    @Test func aTamperedModelWithARehashedManifestIsRefused() throws {
        let s = try Signed("sepsis")
        defer { s.remove() }
        try s.sign()
        let old = try VigilModel.load(path: s.package)
        // One digit of a leaf value, then the manifest and the policy's binding re-hashed so the
        // package loads: only the signature can tell.
        try Self.replace(s.dir.file("model.txt"), "leaf_value=-4.2220579565520682", "leaf_value=-4.2220579565520683")
        let sha = try SHA256Digest.hex(ofFileAt: s.dir.file("model.txt"))
        try Self.replace(s.dir.file("manifest.json"), old.sha256, sha)
        try Self.replace(s.dir.file("policy.json"), old.sha256, sha)
        let model = try VigilModel.load(path: s.package)
        #expect(model.sha256 == sha)
        let c = try #require(try s.checks().first)
        #expect(!c.isValid)
        #expect(c.problem?.contains("field 'package_digest'") == true && c.problem?.contains("changed after it was signed") == true, "\(c.problem ?? "")")
        let e = #expect(throws: VigilError.self) { try PackageSignatures.admit(model: model, trustedKeys: try s.trusted(), required: true) }
        #expect(e?.message.contains(s.package) == true && e?.message.contains("signatures/jane-doe-") == true && e?.message.contains("package_digest") == true, "\(e?.message ?? "")")
    }

    @Test func aTamperedPolicyIsRefused() throws {
        let s = try Signed()
        defer { s.remove() }
        try s.sign()
        let policy = try String(contentsOf: s.dir.file("policy.json"), encoding: .utf8)
        let edited = policy.replacingOccurrences(of: "\"threshold\": 0.", with: "\"threshold\": 0.0", options: [], range: policy.range(of: "\"threshold\": 0."))
        #expect(edited != policy)
        try edited.write(to: s.dir.file("policy.json"), atomically: true, encoding: .utf8)
        let c = try #require(try s.checks().first)
        #expect(c.problem?.contains("field 'package_digest'") == true, "\(c.problem ?? "valid")")
        // A record naming another policy SHA-256 but this package's digest is refused on the policy.
        var r = try #require(c.record)
        let model = try VigilModel.load(path: s.package)
        r.packageDigest = try #require(model.packageDigest)
        r.policySHA256 = String(repeating: "0", count: 64)
        r.signature = try Ed25519SigningKey(file: s.privateKey, what: "--key").signature(for: r.canonicalMessage)
        try Data(r.json.utf8).write(to: URL(fileURLWithPath: c.path))
        let again = try #require(try s.checks().first)
        #expect(again.problem?.contains("field 'policy_sha256'") == true, "\(again.problem ?? "valid")")
    }

    @Test(arguments: [
        ("meaning", "reviewed, not approved"),
        ("time", "2020-01-01T00:00:00Z"),
        ("signer", "Mallory"),
        ("role", "QA"),
    ])
    func anEditedRecordFieldIsRefused(_ field: String, _ value: String) throws {
        let s = try Signed()
        defer { s.remove() }
        let path = try s.sign()
        try #require(try s.checks().first?.isValid == true)
        try Self.edit(path) { $0[field] = value }
        let c = try #require(try s.checks().first)
        #expect(c.record != nil, "the edited record still parses")
        #expect(c.problem?.contains("field 'signature'") == true && c.problem?.contains("changed after signing") == true, "\(field): \(c.problem ?? "valid")")
    }

    @Test func aSignatureByAnUntrustedKeyIsRefused() throws {
        let s = try Signed()
        defer { s.remove() }
        _ = try Ed25519SigningKey.generate(into: s.keys.url.path, name: "mallory")
        try s.sign(signer: "Mallory", key: s.keys.file("mallory.key").path)
        let c = try #require(try s.checks().first)
        #expect(c.problem?.contains("field 'key_id'") == true && c.problem?.contains("not trusted") == true, "\(c.problem ?? "valid")")
        // The same record with its key_id changed to the trusted key's id: the id no longer matches the key.
        let trustedID = try s.trusted().keys[0].id
        try Self.edit(c.path) { $0["key_id"] = trustedID }
        let d = try #require(try s.checks().first)
        #expect(d.problem?.contains("field 'key_id'") == true && d.problem?.contains("is not the id of public_key") == true, "\(d.problem ?? "valid")")
        // Its public key swapped for the trusted one: the signature fails.
        let trustedKey = Data(try s.trusted().keys[0].raw).base64EncodedString()
        try Self.edit(c.path) { $0["key_id"] = trustedID; $0["public_key"] = trustedKey }
        let e = try #require(try s.checks().first)
        #expect(e.problem?.contains("field 'signature'") == true, "\(e.problem ?? "valid")")
    }

    /// Hostile record files: each refused by name, none traps.
    @Test(arguments: [
        ("not-json", "field", "not valid JSON"),
        ("oversized", "field", "more than a signature record may hold"),
        ("non-utf8", "field", "not UTF-8"),
        ("wrong-type", "meaning", "field 'meaning': value 5 must be a string"),
        ("schema", "schema", "field 'schema': value \"vigil.signature/9\" is not a known signature schema"),
        ("unknown-field", "extra", "field 'extra': unknown"),
        ("missing-field", "time", "field 'time': missing"),
        ("bad-base64", "signature", "field 'signature'"),
        ("short-key", "public_key", "exactly 32 bytes"),
        ("bad-time", "time", "RFC 3339"),
        ("control-char", "signer", "control characters"),
        ("array", "root", "must be a JSON object"),
        ("model-type", "model", "field 'model.sha256'"),
    ])
    func aMalformedRecordFileIsRefusedByName(_ kind: String, _ field: String, _ says: String) throws {
        let s = try Signed()
        defer { s.remove() }
        let path = try s.sign()
        let url = URL(fileURLWithPath: path)
        var o = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var data: Data?
        switch kind {
        case "not-json": data = Data("{\"schema\": \"vigil.signature/1\",".utf8)
        case "oversized": data = Data(repeating: 0x20, count: PackageSignatures.maxFileBytes + 1)
        case "non-utf8": data = Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])
        case "wrong-type": o["meaning"] = 5
        case "schema": o["schema"] = "vigil.signature/9"
        case "unknown-field": o["extra"] = true
        case "missing-field": o.removeValue(forKey: "time")
        case "bad-base64": o["signature"] = "!!!not base64!!!"
        case "short-key": o["public_key"] = Data([1, 2, 3]).base64EncodedString()
        case "bad-time": o["time"] = "2026-02-30T10:00:00Z"
        case "control-char": o["signer"] = "Jane\u{7}Doe"
        case "array": data = Data("[1, 2]".utf8)
        case "model-type": o["model"] = ["name": "readmission", "version": "1.0.0", "sha256": 12]
        default: Issue.record("unknown case \(kind)")
        }
        try (data ?? JSONSerialization.data(withJSONObject: o)).write(to: url)
        let c = try #require(try s.checks().first)
        #expect(!c.isValid)
        #expect(c.problem?.contains(says) == true, "\(kind): \(c.problem ?? "valid")")
        #expect((c.problem?.utf8.count ?? 0) < 600, "an unbounded message")
        let model = try VigilModel.load(path: s.package)
        let e = #expect(throws: VigilError.self) { try PackageSignatures.admit(model: model, trustedKeys: try s.trusted(), required: true) }
        #expect(e?.message.contains(URL(fileURLWithPath: path).lastPathComponent) == true, "\(e?.message ?? "")")
    }

    @Test func aSymlinkedRecordIsNotRead() throws {
        let s = try Signed()
        defer { s.remove() }
        let path = try s.sign()
        let elsewhere = s.keys.file("record.json")
        try FileManager.default.moveItem(atPath: path, toPath: elsewhere.path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: elsewhere.path)
        let c = try #require(try s.checks().first)
        #expect(c.problem?.contains("not a regular file") == true, "\(c.problem ?? "valid")")
    }

    @Test func signingRefusesBadTextAndABareModelFile() throws {
        let s = try Signed()
        defer { s.remove() }
        for (signer, role, meaning) in [("", "QA", "ok"), ("Jane", "QA\nadmin", "ok"), ("Jane", "QA", String(repeating: "x", count: 201)), ("Jane", "QA", "ok \u{202E}devorppa")] {
            #expect(throws: VigilError.self) { try s.sign(signer: signer, role: role, meaning: meaning) }
        }
        let written = (try? FileManager.default.contentsOfDirectory(atPath: s.dir.file("signatures").path)) ?? []
        #expect(written.isEmpty, "\(written)")
        let bare = try VigilModel.load(path: s.dir.file("model.onnx").path)
        #expect(throws: VigilError.self) {
            try PackageSignatures.sign(model: bare, key: try Ed25519SigningKey(file: s.privateKey, what: "--key"), signer: "J", role: "R", meaning: "M")
        }
        let e = #expect(throws: VigilError.self) { try PackageSignatures.admit(model: bare, trustedKeys: try s.trusted(), required: true) }
        #expect(e?.message.contains("bare model file") == true)
    }

    @Test func twoSignersCoexistAndTheLaterValidOneQualifies() throws {
        let s = try Signed()
        defer { s.remove() }
        let a = try s.sign(signer: "Author", role: "author")
        let b = try s.sign(signer: "QA Lead", role: "quality assurance", meaning: "released")
        #expect(a != b)
        let checks = try s.checks()
        #expect(checks.count == 2 && checks.allSatisfy(\.isValid), "\(checks.map { $0.problem ?? "ok" })")
        // Break one: the other still qualifies the package.
        try Self.edit(b) { $0["meaning"] = "rejected" }
        let model = try VigilModel.load(path: s.package)
        let admission = try PackageSignatures.admit(model: model, trustedKeys: try s.trusted(), required: true)
        #expect(admission.qualifying?.path == a)
        #expect(admission.warnings.count == 1 && admission.warnings[0].contains(URL(fileURLWithPath: b).lastPathComponent))
    }

    @Test func trustedKeysRefuseAnEmptyFolderAndAWritableKey() throws {
        let s = try Signed()
        defer { s.remove() }
        let empty = s.keys.file("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        #expect(throws: VigilError.self) { try TrustedKeys(dir: empty.path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: s.trustedDir.appendingPathComponent("alice.pub").path)
        let e = #expect(throws: VigilError.self) { try s.trusted() }
        #expect(e?.message.contains("write a trusted key") == true, "\(e?.message ?? "")")
    }

    @Test func theChangeControlDigestFollowsItsRecipe() throws {
        let dir = try TemporaryDirectory("vigil-cc")
        defer { dir.remove() }
        try dir.write("summary.html", "<p>ok</p>\n")
        try FileManager.default.createDirectory(at: dir.file("reports"), withIntermediateDirectories: false)
        try dir.write("reports/validation.json", "{}\n")
        try dir.write("reports/compare.json", "{\"a\": 1}\n")
        try FileManager.default.createSymbolicLink(atPath: dir.file("latest.json").path, withDestinationPath: "reports/compare.json")
        let d = try ChangeControlDigest.compute(dir: dir.url.path)
        #expect(d.files.map(\.path) == ["latest.json", "reports/compare.json", "reports/validation.json", "summary.html"])
        let lines = try d.files.map { "\(try SHA256Digest.hex(ofFileAt: dir.file($0.path)))  \($0.path)\n" }.joined()
        #expect(d.hex == SHA256Digest.hex(of: Data(lines.utf8)))
        // The documented shell recipe, where find and sha256sum exist.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/sha256sum"), FileManager.default.isExecutableFile(atPath: "/usr/bin/find") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "find -L . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"]
            p.currentDirectoryURL = dir.url
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(text.hasPrefix(d.hex), "shell: \(text)")
        }
        // A change to any file changes it; a symlink leaving the folder is refused.
        try dir.write("reports/validation.json", "{ }\n")
        #expect(try ChangeControlDigest.compute(dir: dir.url.path).hex != d.hex)
        try FileManager.default.createSymbolicLink(atPath: dir.file("escape").path, withDestinationPath: "/etc/hostname")
        let e = #expect(throws: VigilError.self) { try ChangeControlDigest.compute(dir: dir.url.path) }
        #expect(e?.message.contains("leaving the folder") == true, "\(e?.message ?? "")")
    }

    @Test func aRecordCarriesTheChangeControlDigestItWasSignedWith() throws {
        let s = try Signed()
        defer { s.remove() }
        let cc = try TemporaryDirectory("vigil-cc")
        defer { cc.remove() }
        try cc.write("MANIFEST.sha256", "abc\n")
        let model = try VigilModel.load(path: s.package)
        let made = try PackageSignatures.sign(model: model, key: try Ed25519SigningKey(file: s.privateKey, what: "--key"), signer: "J", role: "R", meaning: "M", changeControl: cc.url.path)
        let digest = try ChangeControlDigest.compute(dir: cc.url.path).hex
        #expect(made.record.changeControlDigest == digest)
        #expect(PackageSignatures.check(path: made.path, model: model, trustedKeys: try s.trusted(), changeControlDigest: digest).isValid)
        let other = PackageSignatures.check(path: made.path, model: model, trustedKeys: try s.trusted(), changeControlDigest: String(repeating: "1", count: 64))
        #expect(other.problem?.contains("field 'change_control_digest'") == true, "\(other.problem ?? "valid")")
    }
}
