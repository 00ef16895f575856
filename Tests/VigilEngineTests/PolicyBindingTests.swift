import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Issue 18, binding: a policy names the model file it was fitted for (`model.sha256`), and a
/// policy fitted for another model is refused, naming both hashes and the policy file; a policy
/// that names none loads with one warning; a malformed binding is refused by name.
struct PolicyBindingTests {
    static func package(_ name: String) -> URL { Fixtures.repositoryRoot.appendingPathComponent("models/\(name)") }

    /// The SHA-256 of a package's model file, from the file (not from the manifest).
    static func modelSHA256(_ name: String) throws -> String {
        let manifest = try Manifest(data: try Data(contentsOf: package(name).appendingPathComponent("manifest.json")))
        return try SHA256Digest.hex(ofFileAt: package(name).appendingPathComponent(manifest.modelFile))
    }

    /// The shipped readmission policy as a JSON object, to edit.
    static func readmissionPolicy() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: package("readmission").appendingPathComponent("policy.json"))) as! [String: Any]
    }

    // MARK: - Another model's policy

    @Test func readmissionXGBWithReadmissionsPolicyIsRefusedNamingBothHashes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission-xgb"))
        try FileManager.default.removeItem(at: dir.file("policy.json"))
        try FileManager.default.copyItem(at: Self.package("readmission").appendingPathComponent("policy.json"), to: dir.file("policy.json"))
        let readmission = try Self.modelSHA256("readmission"), xgb = try Self.modelSHA256("readmission-xgb")
        #expect(readmission != xgb)
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.kind == .package)
        let message = error?.message ?? ""
        #expect(message.contains(readmission), "\(message)")
        #expect(message.contains(xgb), "\(message)")
        #expect(message.contains(dir.file("policy.json").path), "\(message)")
        #expect(message.contains("'readmission' 1.0.0") && message.contains("'readmission-xgb' 1.0.0"), "\(message)")
    }

    @Test func aPolicyFileGivenInsteadOfThePackagesIsCheckedTheSameWay() throws {
        let foreign = Self.package("readmission").appendingPathComponent("policy.json").path
        let readmission = try Self.modelSHA256("readmission"), xgb = try Self.modelSHA256("readmission-xgb")
        let error = #expect(throws: VigilError.self) {
            _ = try VigilModel.load(path: Self.package("readmission-xgb").path, policy: .file(foreign))
        }
        let message = error?.message ?? ""
        #expect(message.contains(readmission) && message.contains(xgb) && message.contains(foreign), "\(message)")
        // Its own model takes it, and the policy applied is that file.
        let own = try VigilModel.load(path: Self.package("readmission").path, policy: .file(foreign))
        let policySHA = try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: foreign))
        #expect(own.policy.sha256 == policySHA)
    }

    @Test func aBareModelFileWithABoundPolicyIsCheckedAgainstTheFile() throws {
        let file = Self.package("readmission-xgb").appendingPathComponent("model.json").path
        // readmission-xgb's own policy (global, no group fields) applies to its bare model file...
        let ok = try VigilModel.load(path: file, policy: .file(Self.package("readmission-xgb").appendingPathComponent("policy.json").path))
        #expect(ok.policy.modelBinding?.sha256 == ok.sha256)
        #expect(ok.packageDigest == nil)
        // ...and the sepsis policy, fitted for another file, does not.
        let sepsis = try Self.modelSHA256("sepsis")
        let error = #expect(throws: VigilError.self) {
            _ = try VigilModel.load(path: file, policy: .file(Self.package("sepsis").appendingPathComponent("policy.json").path))
        }
        #expect(error?.message.contains(sepsis) == true && error?.message.contains(ok.sha256) == true, "\(error?.message ?? "")")
    }

    // MARK: - Bound and unbound policies

    @Test(arguments: ["readmission", "readmission-xgb", "sepsis", "retinopathy"])
    func everyShippedPolicyIsBoundToItsOwnModelFile(_ name: String) throws {
        let model = try VigilModel.load(path: Self.package(name).path)
        let binding = try #require(model.policy.modelBinding, "\(name): policy.json has no model binding")
        let sha = try Self.modelSHA256(name)
        #expect(binding.sha256 == sha)
        #expect(binding.name == model.name && binding.version == model.version)
        #expect(!model.loadWarnings.contains { $0.contains("does not name the model") }, "\(model.loadWarnings)")
    }

    @Test func anUnboundPolicyLoadsWithOneWarning() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        var policy = try Self.readmissionPolicy()
        policy["model"] = nil
        try JSONSerialization.data(withJSONObject: policy).write(to: dir.file("policy.json"))
        let model = try VigilModel.load(path: dir.url.path)
        #expect(model.policy.modelBinding == nil)
        let notes = model.loadWarnings.filter { $0.contains("does not name the model it was fitted for") }
        #expect(notes.count == 1, "\(model.loadWarnings)")
        #expect(notes.first?.contains(model.sha256) == true)
        #expect(notes.first?.contains(dir.file("policy.json").path) == true)
        // It still decides: the thresholds are the policy's (JSONSerialization rewrote the
        // numbers, which may move their last digit).
        let fallback = try #require(policy["fallback"].flatMap { ($0 as? [String: Any])?["threshold"] as? Double })
        #expect(abs(model.policy.fallbackThreshold - fallback) < 1e-15)
    }

    @Test func theSameHashUnderAnotherNameOrVersionIsAccepted() throws {
        // The hash decides; name and version only make messages readable.
        var policy = try Self.readmissionPolicy()
        policy["model"] = ["name": "readmission-renamed", "version": "9", "sha256": try Self.modelSHA256("readmission")]
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        try JSONSerialization.data(withJSONObject: policy).write(to: dir.file("policy.json"))
        let model = try VigilModel.load(path: dir.url.path)
        #expect(model.policy.modelBinding?.name == "readmission-renamed")
    }

    // MARK: - Malformed bindings

    static let validSHA = String(repeating: "ab", count: 32)

    /// Each: the `model` value as JSON text, and what the refusal must say.
    static let malformed: [(name: String, json: String, says: [String])] = [
        ("bad hex", #"{"sha256": "XYZ"}"#, ["$.model.sha256", "'XYZ'", "64 lowercase hex digits"]),
        ("upper-case hex", #"{"sha256": "\#(PolicyBindingTests.validSHA.uppercased())"}"#, ["$.model.sha256", "lowercase"]),
        ("63 digits", #"{"sha256": "\#(PolicyBindingTests.validSHA.dropLast())"}"#, ["$.model.sha256", "64 lowercase hex digits"]),
        ("a number", #"{"sha256": 42}"#, ["$.model.sha256", "found a number"]),
        ("not an object", #""readmission""#, ["$.model", "expected an object", "found a string"]),
        ("no sha256", #"{"name": "readmission"}"#, ["$.model", "'sha256' is missing"]),
        ("an unknown key", #"{"sha256": "\#(PolicyBindingTests.validSHA)", "file": "model.onnx"}"#, ["$.model", "unknown key 'file'"]),
        ("a huge name", #"{"sha256": "\#(PolicyBindingTests.validSHA)", "name": "\#(String(repeating: "n", count: 100_000))"}"#, ["$.model.name", "longer than 256 bytes", "(100000 bytes)"]),
        ("a version of the wrong type", #"{"sha256": "\#(PolicyBindingTests.validSHA)", "version": 3}"#, ["$.model.version", "expected a string"]),
        ("a control character", #"{"sha256": "\#(PolicyBindingTests.validSHA)", "name": "a\u0001b"}"#, ["$.model.name", "control character"]),
        ("a huge sha256", #"{"sha256": "\#(String(repeating: "0", count: 1 << 20))"}"#, ["$.model.sha256", "64 lowercase hex digits"]),
    ]

    @Test(arguments: malformed.indices)
    func aMalformedBindingIsRefusedByName(_ i: Int) throws {
        let c = Self.malformed[i]
        var policy = try Self.readmissionPolicy()
        policy["model"] = try JSONSerialization.jsonObject(with: Data(c.json.utf8), options: .fragmentsAllowed)
        let data = try JSONSerialization.data(withJSONObject: policy)
        let error = #expect(throws: VigilError.self, "\(c.name)") { _ = try GuardrailPolicy.load(data: data, file: "some/policy.json") }
        let message = error?.message ?? ""
        #expect(error?.kind == .package, "\(c.name)")
        #expect(message.hasPrefix("some/policy.json: "), "\(c.name): \(message)")
        for s in c.says { #expect(message.contains(s), "\(c.name): '\(s)' not in \(message)") }
        #expect(message.utf8.count < 1000, "\(c.name): an unbounded message of \(message.utf8.count) bytes")
    }

    @Test func aMalformedBindingInAPackageStopsTheLoad() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.copyContents(of: Self.package("readmission"))
        var policy = try Self.readmissionPolicy()
        policy["model"] = ["sha256": "not-a-hash"]
        try JSONSerialization.data(withJSONObject: policy).write(to: dir.file("policy.json"))
        let error = #expect(throws: VigilError.self) { _ = try VigilModel.load(path: dir.url.path) }
        #expect(error?.message.contains("policy.json: $.model.sha256") == true, "\(error?.message ?? "")")
    }

    // MARK: - Writing

    @Test func aFittedPolicyWritesItsBindingAndReadsItBack() throws {
        let options = ThresholdFitter.Options(constraint: .none, objective: .balancedAccuracy, tolerance: 0.02, minGroupSize: 0)
        let result = try ThresholdFitter.fit(risks: [0.1, 0.4, 0.6, 0.9], labels: [false, false, true, true], groupKeys: ["", "", "", ""], options: options)
        let binding = GuardrailPolicy.ModelBinding(name: "toy", version: "2", sha256: Self.validSHA)
        let doc = result.policyJSON(groupFields: [], provenance: .init(file: "v.csv", sha256: Self.validSHA, labelColumn: "y", scores: "model toy", version: "1", model: binding))
        let text = doc.text()
        #expect(text.contains("\"model\": {"), "\(text)")
        let policy = try GuardrailPolicy.load(data: Data(text.utf8))
        #expect(policy.modelBinding == binding)
        // Without a model (risks from a column) the policy names none.
        let unbound = result.policyJSON(groupFields: [], provenance: .init(file: "v.csv", sha256: Self.validSHA, labelColumn: "y", scores: "column risk", version: "1"))
        let reread = try GuardrailPolicy.load(data: Data(unbound.text().utf8))
        #expect(reread.modelBinding == nil)
    }
}
