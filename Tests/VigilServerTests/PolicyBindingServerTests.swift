import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// Issue 18 in the server: ledger entries carry the policy's SHA-256 and the package digest,
/// entries written before them still verify and decode, the new fields are checked like the
/// others; `/v1/models` and the OIP metadata show the binding and the digest; a package whose
/// policy was fitted for another model does not start.
struct PolicyBindingServerTests {
    /// The toy package with its policy bound to its model file.
    static func boundToy() throws -> ToyPackage {
        let pkg = try ToyPackage()
        let policyURL = pkg.dir.file("policy.json")
        var policy = try JSONSerialization.jsonObject(with: Data(contentsOf: policyURL)) as! [String: Any]
        policy["model"] = ["name": "toy", "version": "1.0.0", "sha256": try SHA256Digest.hex(ofFileAt: pkg.dir.file("model.linear.json"))]
        try JSONSerialization.data(withJSONObject: policy).write(to: policyURL)
        return pkg
    }

    static func string(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    @Test func predictionAndOutcomeEntriesCarryThePolicySHA256AndThePackageDigest() async throws {
        let pkg = try Self.boundToy()
        defer { pkg.remove() }
        let model = try VigilModel.load(path: pkg.path)
        let policySHA = try SHA256Digest.hex(ofFileAt: pkg.dir.file("policy.json"))
        let digest = try #require(model.packageDigest)
        let o = RunningServer.options(models: [pkg.path], dir: pkg.dir, ledger: true)
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let r = try await c.send("POST", "/v1/models/toy/score", json: "[\(toyRecord(id: "a", lactate: 3)),\(toyRecord(id: "b"))]")
        #expect(r.status == 200)
        let id = try #require(r.array.first?["prediction_id"] as? String)
        #expect(try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(id)", "label": 1}"#).status == 200)
        try await s.stop()

        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.entries.count == 3)
        for (i, e) in report.entries.enumerated() {
            #expect(Self.string(e["policy_sha256"]) == policySHA, "entry \(i + 1)")
            #expect(Self.string(e["package_digest"]) == digest, "entry \(i + 1)")
            let ref = try LedgerEntry.ModelRef(LedgerEntry.Fields(e, place: "entry \(i + 1)"))
            #expect(ref.policySHA256 == policySHA && ref.packageDigest == digest)
        }
        // In the fixed key order, right after the policy version.
        let text = try String(contentsOfFile: o.ledger!, encoding: .utf8)
        #expect(text.contains("\"policy_version\":\"7\",\"policy_sha256\":\"\(policySHA)\",\"package_digest\":\"\(digest)\",\"signature_sha256\":null,\"prediction_id\":"), "\(text.prefix(600))")
        let sizes = text.split(separator: "\n").map(\.utf8.count)
        print("ledger entry sizes (toy, 2 features): \(sizes) bytes")
    }

    @Test func aBareModelFileWritesNullForWhatItLacks() async throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let o = RunningServer.options(models: [pkg.dir.file("model.linear.json").path], dir: pkg.dir, ledger: true)
        let s = try await RunningServer(options: o)
        #expect(try await s.unixClient().send("POST", "/v1/models/model.linear/score", json: #"{"id": "x", "age": 60, "lactate": 2}"#).status == 200)
        try await s.stop()
        let text = try String(contentsOfFile: o.ledger!, encoding: .utf8)
        #expect(text.contains("\"policy_sha256\":null,\"package_digest\":null,"), "\(text)")
        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty, "\(report.problems)")
        let ref = try LedgerEntry.ModelRef(LedgerEntry.Fields(try #require(report.entries.first), place: "entry 1"))
        #expect(ref.policySHA256 == nil && ref.packageDigest == nil)
    }

    @Test func entriesWrittenBeforeTheFieldsVerifyAndDecode() throws {
        // The layout of a prediction and an outcome before issue 18: no policy_sha256, no package_digest.
        let old = LedgerIntegrityTests.KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5)
        #expect(!old.contains("policy_sha256") && !old.contains("package_digest"))
        let outcome = "\"kind\":\"outcome\",\"model\":\"toy\",\"model_version\":\"1\",\"model_sha256\":\"\(String(repeating: "a", count: 64))\",\"policy_version\":\"p1\",\"prediction_id\":\"toy-1\",\"label\":true,\"outputs\":[0.5],\"group\":[\"F\"]"
        // ...followed by an entry of the new layout, as after an upgrade that extends the ledger.
        let new = old.replacingOccurrences(of: "\"prediction_id\":\"toy-1\"", with: "\"policy_sha256\":\"\(String(repeating: "c", count: 64))\",\"package_digest\":null,\"prediction_id\":\"toy-2\"")
        let ledger = LedgerIntegrityTests.plainLedger([old, outcome, new])
        let report = AuditLedger.verify(data: Data(ledger.utf8), file: "old.jsonl")
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.entries.count == 3)
        let refs = try report.entries.enumerated().map { try LedgerEntry.ModelRef(LedgerEntry.Fields($1, place: "line \($0 + 1)")) }
        #expect(refs[0].policySHA256 == nil && refs[0].packageDigest == nil)
        #expect(refs[1].policySHA256 == nil && refs[1].packageDigest == nil)
        #expect(refs[2].policySHA256 == String(repeating: "c", count: 64) && refs[2].packageDigest == nil)
        _ = try LedgerEntry.Prediction(LedgerEntry.Fields(report.entries[0], place: "line 1"))
    }

    @Test(arguments: [
        ("\"policy_sha256\":\"XYZ\",", "field 'policy_sha256'"),
        ("\"policy_sha256\":\"\(String(repeating: "A", count: 64))\",", "field 'policy_sha256'"),
        ("\"policy_sha256\":64,", "field 'policy_sha256'"),
        ("\"package_digest\":\"\(String(repeating: "0", count: 10_000))\",", "field 'package_digest'"),
        ("\"package_digest\":[],", "field 'package_digest'"),
    ])
    func aMalformedNewFieldIsRefusedByName(_ field: String, _ says: String) throws {
        let body = LedgerIntegrityTests.KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5)
            .replacingOccurrences(of: "\"prediction_id\":", with: field + "\"prediction_id\":")
        let report = AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([body]).utf8), file: "hostile.jsonl")
        #expect(report.problems.contains { $0.contains(says) && $0.contains("line 1") }, "\(report.problems)")
        #expect(report.problems.allSatisfy { $0.utf8.count < 1000 }, "an unbounded message")
    }

    @Test func modelsAndOIPMetadataShowTheBindingAndTheDigest() async throws {
        let pkg = try Self.boundToy()
        defer { pkg.remove() }
        let model = try VigilModel.load(path: pkg.path)
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let c = s.unixClient()
        let models = try await c.send("GET", "/v1/models").object
        let entry = try #require((models["models"] as? [[String: Any]])?.first)
        #expect(entry["sha256"] as? String == model.sha256)
        #expect(entry["policy_version"] as? String == "7")
        #expect(entry["policy_sha256"] as? String == model.policy.sha256)
        #expect(entry["policy_bound"] as? Bool == true)
        #expect(entry["package_digest"] as? String == model.packageDigest)
        let meta = try await c.send("GET", "/v2/models/toy").object
        let parameters = try #require(meta["parameters"] as? [String: Any])
        #expect(parameters["package_digest"] as? String == model.packageDigest)
        #expect(parameters["policy_sha256"] as? String == model.policy.sha256 && parameters["policy_bound"] as? Bool == true)
        try await s.stop()
    }

    @Test func anUnboundPolicyIsServedAndSaysSo() async throws {
        let pkg = try ToyPackage()  // its policy names no model
        defer { pkg.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.path], dir: pkg.dir))
        let notes = s.server.notes
        #expect(notes.filter { $0.hasPrefix("toy: ") && $0.contains("does not name the model it was fitted for") }.count == 1, "\(notes)")
        let entry = try #require((try await s.unixClient().send("GET", "/v1/models").object["models"] as? [[String: Any]])?.first)
        #expect(entry["policy_bound"] as? Bool == false)
        try await s.stop()
    }

    @Test func aPackageWhosePolicyWasFittedForAnotherModelDoesNotStart() throws {
        let pkg = try ToyPackage()
        defer { pkg.remove() }
        let policyURL = pkg.dir.file("policy.json")
        var policy = try JSONSerialization.jsonObject(with: Data(contentsOf: policyURL)) as! [String: Any]
        let other = String(repeating: "e", count: 64)
        policy["model"] = ["name": "toy", "version": "0.9.0", "sha256": other]
        try JSONSerialization.data(withJSONObject: policy).write(to: policyURL)
        let sha = try SHA256Digest.hex(ofFileAt: pkg.dir.file("model.linear.json"))
        var o = RunningServer.options(models: [pkg.path], dir: pkg.dir)
        o.socket = nil
        let error = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(error?.message.contains(other) == true && error?.message.contains(sha) == true, "\(error?.message ?? "")")
    }
}
