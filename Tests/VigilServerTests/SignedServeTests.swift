import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// Issue 18, signatures in the server: `--require-signed` refuses an unsigned package and one
/// tampered after signing, naming the package, the record and why, and serves a signed one;
/// `/v1/models` lists each package's records; prediction and outcome ledger entries carry the
/// qualifying record's SHA-256 (`signature_sha256`), which verify and replay read; without
/// `--require-signed` an invalid record is a warning.
struct SignedServeTests {
    /// The bound toy package, a key pair and a trusted-keys folder with the public key.
    struct Signed {
        let pkg: ToyPackage
        let keys: TemporaryDirectory
        var trusted: String { keys.file("trusted").path }

        init() throws {
            pkg = try PolicyBindingServerTests.boundToy()
            keys = try TemporaryDirectory("vigil-serve-keys")
            _ = try Ed25519SigningKey.generate(into: keys.url.path, name: "qa")
            try FileManager.default.createDirectory(at: keys.file("trusted"), withIntermediateDirectories: false)
            try FileManager.default.copyItem(at: keys.file("qa.pub"), to: keys.file("trusted/qa.pub"))
        }

        func sign() throws -> (path: String, sha256: String) {
            let model = try VigilModel.load(path: pkg.path)
            let made = try PackageSignatures.sign(
                model: model, key: try Ed25519SigningKey(file: keys.file("qa.key").path, what: "--key"),
                signer: "Quinn A", role: "quality assurance", meaning: "approved for production")
            return (made.path, try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: made.path)))
        }

        func options(required: Bool, ledger: Bool = false) -> ServeOptions {
            var o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: ledger)
            o.requireSigned = required
            o.trustedKeysDir = trusted
            return o
        }

        func remove() {
            pkg.remove()
            keys.remove()
        }
    }

    @Test func requireSignedRefusesAnUnsignedPackage() throws {
        let s = try Signed()
        defer { s.remove() }
        var o = s.options(required: true)
        o.socket = nil
        let e = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(e?.message.contains("--model \(s.pkg.path)") == true && e?.message.contains("no signature record") == true, "\(e?.message ?? "")")
        // Without --trusted-keys strict mode cannot start at all.
        o.trustedKeysDir = nil
        let u = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(u?.kind == .usage && u?.message.contains("--trusted-keys") == true)
    }

    @Test func requireSignedRefusesAPackageTamperedAfterSigningAndAnEditedRecord() throws {
        let s = try Signed()
        defer { s.remove() }
        let record = try s.sign()
        var o = s.options(required: true)
        o.socket = nil
        _ = try VigilServer(options: o)  // signed: it starts
        // The policy edited after signing: a threshold changed.
        let policy = s.pkg.dir.file("policy.json")
        let text = try String(contentsOf: policy, encoding: .utf8)
        try text.replacingOccurrences(of: "\"threshold\":0.4", with: "\"threshold\":0.2").write(to: policy, atomically: true, encoding: .utf8)
        #expect(try String(contentsOf: policy, encoding: .utf8) != text, "the policy was not changed")
        let e = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        let name = URL(fileURLWithPath: record.path).lastPathComponent
        #expect(e?.message.contains(s.pkg.path) == true && e?.message.contains("signatures/\(name)") == true && e?.message.contains("field 'package_digest'") == true, "\(e?.message ?? "")")
        // The policy restored and the record's meaning edited instead.
        try text.write(to: policy, atomically: true, encoding: .utf8)
        let recordText = try String(contentsOfFile: record.path, encoding: .utf8)
        try recordText.replacingOccurrences(of: "approved for production", with: "approved for anything").write(toFile: record.path, atomically: true, encoding: .utf8)
        let f = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(f?.message.contains("field 'signature'") == true, "\(f?.message ?? "")")
    }

    @Test func aSignedPackageIsServedWithItsSignatureInModelsAndTheLedger() async throws {
        let s = try Signed()
        defer { s.remove() }
        let record = try s.sign()
        let o = s.options(required: true, ledger: true)
        let server = try await RunningServer(options: o)
        let c = server.unixClient()
        let models = try await c.send("GET", "/v1/models").object
        let entry = try #require((models["models"] as? [[String: Any]])?.first)
        let sigs = try #require(entry["signatures"] as? [[String: Any]])
        #expect(sigs.count == 1)
        #expect(sigs.first?["signer"] as? String == "Quinn A" && sigs.first?["role"] as? String == "quality assurance")
        #expect(sigs.first?["meaning"] as? String == "approved for production" && sigs.first?["valid"] as? Bool == true)
        #expect(sigs.first?["sha256"] as? String == record.sha256 && sigs.first?["qualifying"] as? Bool == true)
        #expect(sigs.first?["key_id"] as? String == (try TrustedKeys(dir: s.trusted).keys[0].id))
        #expect(sigs.first?["file"] as? String == "signatures/\(URL(fileURLWithPath: record.path).lastPathComponent)")
        let r = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "a", lactate: 3))
        #expect(r.status == 200)
        let id = try #require(r.object["prediction_id"] as? String)
        #expect(try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(id)", "label": 1}"#).status == 200)
        try await server.stop()

        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.entries.count == 2)
        for (i, e) in report.entries.enumerated() {
            let ref = try LedgerEntry.ModelRef(LedgerEntry.Fields(e, place: "entry \(i + 1)"))
            #expect(ref.signatureSHA256 == record.sha256, "entry \(i + 1)")
        }
        // A restart replays the entries (the field is read, counted as before).
        let again = try await RunningServer(options: o)
        #expect(again.server.notes.contains { $0.contains("2 entries counted") }, "\(again.server.notes)")
        try await again.stop()
    }

    @Test func withoutRequireSignedAnInvalidRecordIsAWarningAndShownInvalid() async throws {
        let s = try Signed()
        defer { s.remove() }
        let record = try s.sign()
        try Data("{\"schema\": \"vigil.signature/1\"}".utf8).write(to: URL(fileURLWithPath: record.path))
        let server = try await RunningServer(options: s.options(required: false, ledger: true))
        #expect(server.server.notes.contains { $0.hasPrefix("toy: warning: signature signatures/") && $0.contains("field ") }, "\(server.server.notes)")
        let c = server.unixClient()
        let entry = try #require((try await c.send("GET", "/v1/models").object["models"] as? [[String: Any]])?.first)
        let sig = try #require((entry["signatures"] as? [[String: Any]])?.first)
        #expect(sig["valid"] as? Bool == false && (sig["reason"] as? String)?.contains("missing") == true, "\(sig)")
        #expect(sig["signer"] is NSNull)
        #expect(try await c.send("POST", "/v1/models/toy/score", json: toyRecord()).status == 200)
        try await server.stop()
        let text = try String(contentsOfFile: s.pkg.dir.file("ledger.jsonl").path, encoding: .utf8)
        #expect(text.contains("\"signature_sha256\":null,"), "\(text)")
        // Without --trusted-keys nothing is read: signatures is null.
        var o = RunningServer.options(models: [s.pkg.path], dir: s.pkg.dir)
        o.trustedKeysDir = nil
        let plain = try await RunningServer(options: o)
        let e2 = try #require((try await plain.unixClient().send("GET", "/v1/models").object["models"] as? [[String: Any]])?.first)
        #expect(e2["signatures"] is NSNull, "\(e2)")
        try await plain.stop()
    }

    @Test(arguments: [
        ("\"signature_sha256\":\"XYZ\",", "field 'signature_sha256'"),
        ("\"signature_sha256\":7,", "field 'signature_sha256'"),
    ])
    func aMalformedSignatureFieldInTheLedgerIsRefusedByName(_ field: String, _ says: String) throws {
        let body = LedgerIntegrityTests.KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5)
            .replacingOccurrences(of: "\"prediction_id\":", with: field + "\"prediction_id\":")
        let report = AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([body]).utf8), file: "hostile.jsonl")
        #expect(report.problems.contains { $0.contains(says) && $0.contains("line 1") }, "\(report.problems)")
    }
}
