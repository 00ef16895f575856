import Foundation
import Testing
import VigilTesting

/// Issue 18, signatures as a user meets them: `vigil ledger keygen` makes the key pair,
/// `vigil sign` writes a record into a copy of a shipped package, `vigil verify-signature`
/// accepts it and refuses it once the package or the record changes, `vigil serve
/// --require-signed` refuses an unsigned package before binding anything.
struct SignCommandTests {
    /// A copy of models/readmission, a key pair from `vigil ledger keygen` and a trusted-keys
    /// folder holding its public key.
    struct Setup {
        let dir: TemporaryDirectory
        var package: String { dir.file("pkg").path }
        var key: String { dir.file("keys/ledger-signing.key").path }
        var trusted: String { dir.file("trusted").path }

        init() throws {
            dir = try TemporaryDirectory("vigil-sign-cli")
            try FileManager.default.createDirectory(at: dir.file("pkg"), withIntermediateDirectories: false)
            for name in try FileManager.default.contentsOfDirectory(atPath: Fixtures.repositoryRoot.appendingPathComponent("models/readmission").path) {
                try FileManager.default.copyItem(at: Fixtures.repositoryRoot.appendingPathComponent("models/readmission/\(name)"), to: dir.file("pkg/\(name)"))
            }
            let k = try CLI.run(["ledger", "keygen", "--out", dir.file("keys").path])
            #expect(k.status == 0, "\(k.stderr)")
            try FileManager.default.createDirectory(at: dir.file("trusted"), withIntermediateDirectories: false)
            try FileManager.default.copyItem(at: dir.file("keys/ledger-signing.pub"), to: dir.file("trusted/jane.pub"))
        }

        func sign(_ extra: [String] = []) throws -> CLI.Result {
            try CLI.run(["sign", "--package", package, "--key", key, "--signer", "Jane Doe", "--role", "clinical safety officer",
                         "--meaning", "approved for production"] + extra)
        }

        func verify(_ extra: [String] = []) throws -> CLI.Result {
            try CLI.run(["verify-signature", "--package", package, "--trusted-keys", trusted] + extra)
        }
    }

    @Test func signThenVerify() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let r = try s.sign()
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        let written = try #require(lines.first.map(String.init))
        #expect(written.hasPrefix("wrote \(s.package)/signatures/jane-doe-") && written.hasSuffix(".json"), "\(r.stdout)")
        #expect(lines.count == 2 && lines[1].hasPrefix("key id ") && lines[1].contains("package digest "), "\(r.stdout)")
        let v = try s.verify()
        #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
        #expect(v.stdout.hasPrefix("ok: signatures/jane-doe-") && v.stdout.contains("signer 'Jane Doe', role 'clinical safety officer', meaning 'approved for production'"), "\(v.stdout)")
        #expect(v.stdout.contains("1 of 1 signature records valid"), "\(v.stdout)")
    }

    @Test func verifyRefusesATamperedPolicyAndAnEditedRecord() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let r = try s.sign()
        #expect(r.status == 0, "\(r.stderr)")
        let record = String(try #require(r.stdout.split(separator: "\n").first).dropFirst("wrote ".count))
        // The record edited: its meaning.
        let original = try String(contentsOfFile: record, encoding: .utf8)
        try original.replacingOccurrences(of: "approved for production", with: "approved for research").write(toFile: record, atomically: true, encoding: .utf8)
        let e = try s.verify(["--signature", record])
        #expect(e.status == 1)
        #expect(e.stdout.hasPrefix("refused: \(record): field 'signature'"), "\(e.stdout)")
        try original.write(toFile: record, atomically: true, encoding: .utf8)
        #expect(try s.verify().status == 0)
        // The policy edited after signing (one byte of white space keeps it valid JSON).
        let policy = URL(fileURLWithPath: s.package).appendingPathComponent("policy.json")
        try (try Data(contentsOf: policy) + Data(" ".utf8)).write(to: policy)
        let p = try s.verify()
        #expect(p.status == 1)
        #expect(p.stdout.hasPrefix("refused: signatures/jane-doe-") && p.stdout.contains("field 'package_digest'") && p.stdout.contains("changed after it was signed"), "\(p.stdout)")
        #expect(p.stdout.contains("0 of 1 signature records valid"), "\(p.stdout)")
    }

    @Test func verifyRefusesAnotherKeyAndAnUnsignedPackage() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let none = try s.verify()
        #expect(none.status == 1 && none.stderr.contains("no signature record"), "\(none.stderr)")
        #expect(try CLI.run(["ledger", "keygen", "--out", s.dir.file("other").path]).status == 0)
        let r = try s.sign()
        #expect(r.status == 0)
        let v = try CLI.run(["verify-signature", "--package", s.package, "--trusted-keys", s.dir.file("other").path])
        #expect(v.status == 1 && v.stdout.contains("field 'key_id'") && v.stdout.contains("not trusted"), "\(v.stdout) \(v.stderr)")
    }

    @Test func signRefusesAControlCharacterAndAReadableKey() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let r = try CLI.run(["sign", "--package", s.package, "--key", s.key, "--signer", "Jane\tDoe", "--role", "QA", "--meaning", "ok"])
        #expect(r.status == 2 && r.stderr.contains("--signer") && r.stderr.contains("control characters"), "\(r.stderr)")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: s.key)
        let k = try s.sign()
        #expect(k.status == 2 && k.stderr.contains("chmod 600"), "\(k.stderr)")
    }

    @Test func serveRequireSignedRefusesAnUnsignedPackageAndNeedsTrustedKeys() throws {
        let s = try Setup()
        defer { s.dir.remove() }
        let socket = s.dir.file("vigil.sock").path
        let noKeys = try CLI.run(["serve", "--model", s.package, "--socket", socket, "--require-signed"])
        #expect(noKeys.status == 2 && noKeys.stderr.contains("--trusted-keys"), "\(noKeys.stderr)")
        let unsigned = try CLI.run(["serve", "--model", s.package, "--socket", socket, "--require-signed", "--trusted-keys", s.trusted])
        #expect(unsigned.status == 1, "\(unsigned.stdout) \(unsigned.stderr)")
        #expect(unsigned.stderr.contains("--model \(s.package)") && unsigned.stderr.contains("no valid signature by a trusted key"), "\(unsigned.stderr)")
        #expect(!unsigned.stdout.contains("ready"), "nothing is served")
    }
}
