import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// Issue 18, shadow deployment and promotion: a shadow version scores every request production
/// answered, off the response path; its ledger entries are marked (`role`, `shadow_of`) and
/// verify; outcomes reach both; the monitor shows its counters beside production's and a
/// restart rebuilds them; promotion swaps versions without restart, behind the admin token,
/// signed in strict mode, and the ledger records the switch.
struct ShadowPromotionTests {
    /// Version 2 of the toy model: risk = sigmoid(0.05 age + 1.2 lactate - 5.2), so age 60 and
    /// lactate 2 give sigmoid(0.2). `renamedSexField`: its `sex` group reads the request field
    /// `sex_at_birth`, so that the shadow refuses production's requests (unknown field `sex`).
    static func toyV2(renamedSexField: Bool = false, name: String = "toy") throws -> ToyPackage {
        let pkg = try ToyPackage()
        let modelURL = try pkg.dir.write("model.linear.json", """
            {"format": "vigil-linear", "version": 1, "link": "logistic", "features": ["age", "lactate"],
             "coefficients": [0.05, 1.2], "intercept": -5.2}
            """)
        let sha = try SHA256Digest.hex(ofFileAt: modelURL)
        let manifestURL = pkg.dir.file("manifest.json")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        manifest["version"] = "2.0.0"
        manifest["name"] = name
        var model = manifest["model"] as! [String: Any]
        model["sha256"] = sha
        manifest["model"] = model
        if renamedSexField {
            var groups = manifest["groups"] as! [[String: Any]]
            groups[0]["field"] = "sex_at_birth"
            manifest["groups"] = groups
        }
        try JSONSerialization.data(withJSONObject: manifest).write(to: manifestURL)
        return pkg
    }

    static let v2Risk = 1 / (1 + exp(-0.2))

    /// An admin token file (mode 600) in `dir`.
    static func adminToken(_ dir: TemporaryDirectory, _ token: String = "admin-token-0123456789") throws -> String {
        let path = dir.file("admin.token").path
        FileManager.default.createFile(atPath: path, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
        return path
    }

    /// Polls `condition` for up to 10 s (the shadow scores off the response path).
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<400 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    static func overall(_ report: [String: Any]) -> [String: Any] { report["overall"] as? [String: Any] ?? [:] }

    @Test func aShadowScoresEveryRequestAndItsEntriesCountersAndOutcomesAreItsOwn() async throws {
        let prod = try ToyPackage(), cand = try Self.toyV2()
        defer { prod.remove(); cand.remove() }
        var o = RunningServer.options(models: [prod.path], dir: prod.dir, ledger: true)
        o.shadowPaths = [cand.path]
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let r = try await c.send("POST", "/v1/models/toy/score", json: "[\(toyRecord(id: "a")),\(toyRecord(id: "b", lactate: 4)),\(toyRecord(id: "c", sex: "M"))]")
        #expect(r.status == 200, "\(r.text)")
        // Production answers: v1's risks, production ids.
        #expect(r.array.first?["risk"] as? Double == 0.5, "\(r.text)")
        let ids = r.array.compactMap { $0["prediction_id"] as? String }
        #expect(ids.count == 3 && ids.allSatisfy { $0.hasPrefix("toy-") && !$0.contains("shadow") }, "\(ids)")
        let infer = try await c.send("POST", "/v2/models/toy/infer", json: """
            {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP64", "data": [[60, 2]]},
                        {"name": "sex", "shape": [1], "datatype": "BYTES", "data": ["F"]}]}
            """)
        #expect(infer.status == 200, "\(infer.text)")

        var monitor: [String: Any] = [:]
        let arrived = try await Self.eventually {
            monitor = try await c.send("GET", "/v1/models/toy/monitor").object
            return Self.overall(monitor["shadow"] as? [String: Any] ?? [:])["predictions"] as? Int == 4
        }
        #expect(arrived, "the shadow did not score the 4 rows: \(monitor)")
        #expect(Self.overall(monitor)["predictions"] as? Int == 4)
        #expect(monitor["role"] as? String == "production")
        let shadow = try #require(monitor["shadow"] as? [String: Any])
        #expect(shadow["role"] as? String == "shadow")
        #expect((shadow["model"] as? [String: Any])?["version"] as? String == "2.0.0")
        #expect((shadow["failures"] as? [String: Any])?["count"] as? Int == 0)

        // An outcome for a production prediction is recorded for the shadow too.
        let out = try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(ids[0])", "label": 1}"#)
        #expect(out.status == 200, "\(out.text)")
        monitor = try await c.send("GET", "/v1/models/toy/monitor").object
        let shadowOverall = Self.overall(monitor["shadow"] as? [String: Any] ?? [:])
        #expect((shadowOverall["tp"] as? Int ?? 0) + (shadowOverall["fn"] as? Int ?? 0) == 1, "\(shadowOverall)")
        #expect((Self.overall(monitor)["tp"] as? Int) == 1)
        // A shadow's id is not a production prediction: outcomes for it are refused.
        let models = try await c.send("GET", "/v1/models").object
        let entry = try #require((models["models"] as? [[String: Any]])?.first)
        #expect((entry["shadow"] as? [String: Any])?["version"] as? String == "2.0.0", "\(entry)")
        let metrics = try await c.send("GET", "/metrics").text
        #expect(metrics.contains("vigil_shadow_predictions_total{model=\"toy\""), "\(metrics.prefix(2000))")
        try await s.stop()

        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty, "\(report.problems)")
        let refs = try report.entries.enumerated().map { i, e in try LedgerEntry.ModelRef(LedgerEntry.Fields(e, place: "entry \(i + 1)")) }
        let shadowRefs = refs.filter { $0.role == .shadow }
        #expect(refs.count == 10 && shadowRefs.count == 5, "4 + 4 predictions and 1 + 1 outcomes: \(refs.map(\.predictionID))")
        let productionIDs = Set(refs.filter { $0.role == .production }.map(\.predictionID))
        #expect(shadowRefs.allSatisfy { $0.predictionID.hasPrefix("toy-shadow-") && productionIDs.contains($0.shadowOf ?? "") }, "\(shadowRefs.map { ($0.predictionID, $0.shadowOf) })")
        let cand256 = try VigilModel.load(path: cand.path).sha256
        #expect(shadowRefs.allSatisfy { $0.modelSHA256 == cand256 })
        // The shadow's risk for record a is v2's.
        let shadowA = report.entries.first { e in
            if case .string(let of)? = e["shadow_of"], of == ids[0], case .string("prediction")? = e["kind"] { return true }
            return false
        }
        if case .array(let outs)? = shadowA?["outputs"], case .number(let risk)? = outs.first {
            #expect(abs(risk - Self.v2Risk) < 1e-12)
        } else {
            Issue.record("no shadow prediction for \(ids[0])")
        }

        // A restart rebuilds both sets of counters from the ledger.
        let again = try await RunningServer(options: o)
        #expect(again.server.notes.contains { $0.contains("10 entries counted") }, "\(again.server.notes)")
        let m2 = try await again.unixClient().send("GET", "/v1/models/toy/monitor").object
        let s2 = Self.overall(m2["shadow"] as? [String: Any] ?? [:])
        #expect(s2["predictions"] as? Int == 4 && (s2["tp"] as? Int ?? 0) + (s2["fn"] as? Int ?? 0) == 1, "\(s2)")
        let shadowID = try #require(shadowRefs.first?.predictionID)
        let refused = try await again.unixClient().send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(shadowID)", "label": 0}"#)
        #expect(refused.status == 404, "\(refused.text)")
        try await again.stop()
    }

    @Test func aRequestTheShadowCannotReadIsAnsweredAndCountedAsAShadowFailure() async throws {
        let prod = try ToyPackage(), cand = try Self.toyV2(renamedSexField: true)
        defer { prod.remove(); cand.remove() }
        var o = RunningServer.options(models: [prod.path], dir: prod.dir, ledger: true)
        o.shadowPaths = ["toy=\(cand.path)"]
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let r = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "x"))
        #expect(r.status == 200, "\(r.text)")
        var shadow: [String: Any] = [:]
        let counted = try await Self.eventually {
            shadow = try await c.send("GET", "/v1/models/toy/monitor").object["shadow"] as? [String: Any] ?? [:]
            return (shadow["failures"] as? [String: Any])?["count"] as? Int == 1
        }
        #expect(counted, "\(shadow)")
        #expect(((shadow["failures"] as? [String: Any])?["last"] as? String)?.contains("'sex'") == true, "\(shadow)")
        #expect(Self.overall(shadow)["predictions"] as? Int == 0)
        #expect(try await c.send("GET", "/metrics").text.contains("vigil_shadow_failures_total{model=\"toy\",reason=\"refused\"} 1"))
        try await s.stop()
    }

    @Test func shadowOptionsThatCannotWorkAreRefusedAtStart() throws {
        let prod = try ToyPackage(), other = try Self.toyV2(name: "other"), cand = try Self.toyV2()
        defer { prod.remove(); other.remove(); cand.remove() }
        var o = RunningServer.options(models: [prod.path, other.path], dir: prod.dir)
        o.socket = nil  // a refused start would keep the socket's lock
        o.shadowPaths = [cand.path]
        let e = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(e?.message.contains("--shadow NAME=PATH") == true, "\(e?.message ?? "")")
        o.modelPaths = [prod.path]
        o.shadowPaths = [prod.path]
        let same = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(same?.message.contains("the same model and policy as production") == true, "\(same?.message ?? "")")
        o.shadowPaths = [cand.path, "toy=\(cand.path)"]
        let two = #expect(throws: VigilError.self) { _ = try VigilServer(options: o) }
        #expect(two?.message.contains("already has a shadow") == true, "\(two?.message ?? "")")
    }

    @Test func promotionNeedsTheAdminTokenAndRecordsTheSwitchInTheLedger() async throws {
        let prod = try ToyPackage(), cand = try Self.toyV2(), foreign = try Self.toyV2(name: "other")
        defer { prod.remove(); cand.remove(); foreign.remove() }
        let promote = "/v1/admin/models/toy/promote"
        let body = #"{"package": "\#(cand.path)", "actor": "Dr Ada Lovelace, CMIO"}"#
        // Without --admin-token-file the admin endpoints are off.
        let off = try await RunningServer(options: RunningServer.options(models: [prod.path], dir: prod.dir))
        let refused = try await off.unixClient().send("POST", promote, json: body)
        #expect(refused.status == 403 && refused.error.contains("--admin-token-file"), "\(refused.text)")
        try await off.stop()

        var o = RunningServer.options(models: [prod.path], dir: prod.dir, ledger: true)
        o.adminTokenFile = try Self.adminToken(prod.dir)
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let good = ["Authorization": "Bearer admin-token-0123456789", "Content-Type": "application/json"]
        let before = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "before"))
        let beforeID = try #require(before.object["prediction_id"] as? String)
        func post(_ json: String, _ headers: [String: String]) async throws -> LoopbackHTTPClient.Response {
            try await offPool { try c.request("POST", promote, body: Data(json.utf8), headers: headers) }
        }
        #expect(try await post(body, ["Content-Type": "application/json"]).status == 401)
        #expect(try await post(body, ["Authorization": "Bearer not-the-admin-token", "Content-Type": "application/json"]).status == 401)
        let noActor = try await post(#"{"package": "\#(cand.path)"}"#, good)
        #expect(noActor.status == 400 && noActor.error.contains("body.actor"), "\(noActor.text)")
        let both = try await post(#"{"package": "\#(cand.path)", "shadow": true, "actor": "x"}"#, good)
        #expect(both.status == 400 && both.error.contains("exactly one"), "\(both.text)")
        let unknown = try await post(#"{"package": "\#(cand.path)", "actor": "x", "force": true}"#, good)
        #expect(unknown.status == 400 && unknown.error.contains("force"), "\(unknown.text)")
        let missing = try await post(#"{"package": "\#(prod.dir.file("nowhere").path)", "actor": "x"}"#, good)
        #expect(missing.status == 422, "\(missing.text)")
        let wrongName = try await post(#"{"package": "\#(foreign.path)", "actor": "x"}"#, good)
        #expect(wrongName.status == 422 && wrongName.error.contains("model 'other'"), "\(wrongName.text)")
        let same = try await post(#"{"package": "\#(prod.path)", "actor": "x"}"#, good)
        #expect(same.status == 409, "\(same.text)")
        let noShadow = try await post(#"{"shadow": true, "actor": "x"}"#, good)
        #expect(noShadow.status == 409, "\(noShadow.text)")

        let done = try await post(body, good)
        #expect(done.status == 200, "\(done.text)")
        #expect((done.object["to"] as? [String: Any])?["version"] as? String == "2.0.0")
        #expect((done.object["from"] as? [String: Any])?["version"] as? String == "1.0.0")
        let after = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "after"))
        #expect(abs((after.object["risk"] as? Double ?? 0) - Self.v2Risk) < 1e-12, "\(after.text)")
        // An outcome of v1's prediction, sent after the switch, is v1's.
        #expect(try await c.send("POST", "/v1/models/toy/outcomes", json: #"{"prediction_id": "\#(beforeID)", "label": 1}"#).status == 200)
        let models = try await c.send("GET", "/v1/models").object
        #expect(((models["models"] as? [[String: Any]])?.first?["version"] as? String) == "2.0.0")
        #expect(try await c.send("GET", "/metrics").text.contains("vigil_promotions_total{model=\"toy\"} 1"))
        try await s.stop()

        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty, "\(report.problems)")
        let kinds = report.entries.map { e -> String in if case .string(let k)? = e["kind"] { return k } else { return "?" } }
        #expect(kinds == ["prediction", "deployment", "prediction", "outcome"], "\(kinds)")
        let v1 = try VigilModel.load(path: prod.path), v2 = try VigilModel.load(path: cand.path)
        let deployment = try LedgerEntry.Deployment(LedgerEntry.Fields(report.entries[1], place: "entry 2"))
        #expect(deployment.slot == "toy" && deployment.actor == "Dr Ada Lovelace, CMIO")
        #expect(deployment.from.modelSHA256 == v1.sha256 && deployment.to.modelSHA256 == v2.sha256)
        #expect(deployment.to.packageDigest == v2.packageDigest)
        let shas = try report.entries.enumerated().filter { kinds[$0.offset] != "deployment" }.map { i, e in try LedgerEntry.ModelRef(LedgerEntry.Fields(e, place: "entry \(i + 1)")).modelSHA256 }
        #expect(shas == [v1.sha256, v2.sha256, v1.sha256], "the outcome belongs to the version that predicted")
    }

    @Test func promotingTheShadowMakesItProductionAndEndsTheShadow() async throws {
        let prod = try ToyPackage(), cand = try Self.toyV2()
        defer { prod.remove(); cand.remove() }
        var o = RunningServer.options(models: [prod.path], dir: prod.dir, ledger: true)
        o.shadowPaths = [cand.path]
        o.adminTokenFile = try Self.adminToken(prod.dir)
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let r = try await offPool {
            try c.request("POST", "/v1/admin/models/toy/promote", body: Data(#"{"shadow": true, "actor": "release manager"}"#.utf8),
                          headers: ["Authorization": "Bearer admin-token-0123456789", "Content-Type": "application/json"])
        }
        #expect(r.status == 200 && r.object["shadow"] is NSNull, "\(r.text)")
        let models = try await c.send("GET", "/v1/models").object
        let entry = try #require((models["models"] as? [[String: Any]])?.first)
        #expect(entry["version"] as? String == "2.0.0" && entry["shadow"] is NSNull, "\(entry)")
        let after = try await c.send("POST", "/v1/models/toy/score", json: toyRecord(id: "after"))
        #expect(abs((after.object["risk"] as? Double ?? 0) - Self.v2Risk) < 1e-12)
        #expect((after.object["prediction_id"] as? String)?.contains("shadow") == false)
        try await s.stop()
    }

    @Test func inStrictModeOnlyASignedPackageIsPromoted() async throws {
        let prod = try ToyPackage(), cand = try Self.toyV2()
        let keys = try TemporaryDirectory("vigil-promote-keys")
        defer { prod.remove(); cand.remove(); keys.remove() }
        _ = try Ed25519SigningKey.generate(into: keys.url.path, name: "qa")
        try FileManager.default.createDirectory(at: keys.file("trusted"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: keys.file("qa.pub"), to: keys.file("trusted/qa.pub"))
        func sign(_ path: String) throws {
            _ = try PackageSignatures.sign(
                model: try VigilModel.load(path: path), key: try Ed25519SigningKey(file: keys.file("qa.key").path, what: "--key"),
                signer: "Quinn A", role: "quality assurance", meaning: "approved for production")
        }
        try sign(prod.path)
        var o = RunningServer.options(models: [prod.path], dir: prod.dir, ledger: true)
        o.requireSigned = true
        o.trustedKeysDir = keys.file("trusted").path
        o.adminTokenFile = try Self.adminToken(prod.dir)
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        let headers = ["Authorization": "Bearer admin-token-0123456789", "Content-Type": "application/json"]
        let body = Data(#"{"package": "\#(cand.path)", "actor": "release manager"}"#.utf8)
        let unsigned = try await offPool { try c.request("POST", "/v1/admin/models/toy/promote", body: body, headers: headers) }
        #expect(unsigned.status == 422 && unsigned.error.contains("no signature record"), "\(unsigned.text)")
        try sign(cand.path)
        let signed = try await offPool { try c.request("POST", "/v1/admin/models/toy/promote", body: body, headers: headers) }
        #expect(signed.status == 200, "\(signed.text)")
        #expect((signed.object["to"] as? [String: Any])?["signature_sha256"] is String, "\(signed.text)")
        try await s.stop()
        let report = try AuditLedger.verify(path: o.ledger!)
        #expect(report.problems.isEmpty && report.entries.count == 1, "\(report.problems)")
    }

    @Test(arguments: [
        (#""role":"boss","#, "field 'role'"),
        (#""role":"shadow","#, "field 'shadow_of'"),
        (#""shadow_of":"toy-9","#, "field 'shadow_of'"),
    ])
    func aMalformedShadowMarkInTheLedgerIsRefusedByName(_ field: String, _ says: String) {
        let body = LedgerIntegrityTests.KeyedLedger.prediction(id: "toy-1", record: "r", risk: 0.5)
            .replacingOccurrences(of: "\"record_id\":", with: field + "\"record_id\":")
        let report = AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([body]).utf8), file: "hostile.jsonl")
        #expect(report.problems.contains { $0.contains(says) && $0.contains("line 1") }, "\(report.problems)")
    }

    @Test func aMalformedDeploymentEntryIsRefusedByName() {
        let good = #""kind":"deployment","action":"promote","slot":"toy","from":{"model":"toy","model_version":"1","model_sha256":"a","policy_sha256":null,"package_digest":null,"signature_sha256":null},"to":{"model":"toy","model_version":"2","model_sha256":"b","policy_sha256":null,"package_digest":null,"signature_sha256":null},"actor":"x""#
        #expect(AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([good]).utf8), file: "ok.jsonl").problems.isEmpty)
        for (edit, says) in [("\"action\":\"promote\"", "field 'action'"), ("\"from\":{", "field 'from'"), ("\"package_digest\":null,\"signature_sha256\":null},\"actor\"", "field 'package_digest'")] {
            let bad: String
            switch says {
            case "field 'action'": bad = good.replacingOccurrences(of: edit, with: "\"action\":\"delete\"")
            case "field 'from'": bad = good.replacingOccurrences(of: "\"from\":{\"model\":\"toy\",\"model_version\":\"1\",\"model_sha256\":\"a\",\"policy_sha256\":null,\"package_digest\":null,\"signature_sha256\":null}", with: "\"from\":7")
            default: bad = good.replacingOccurrences(of: edit, with: "\"package_digest\":\"XYZ\",\"signature_sha256\":null},\"actor\"")
            }
            #expect(bad != good)
            let report = AuditLedger.verify(data: Data(LedgerIntegrityTests.plainLedger([bad]).utf8), file: "hostile.jsonl")
            #expect(report.problems.contains { $0.contains(says) }, "\(says): \(report.problems)")
        }
    }

    /// `vigil compare --ledger`: the shadow trial read back from the ledger, each request
    /// paired with its shadow prediction and outcome; the flips and risks are the served ones.
    @Test func compareReadsAShadowTrialFromTheLedger() async throws {
        let prod = try ToyPackage(), cand = try Self.toyV2()
        defer { prod.remove(); cand.remove() }
        var o = RunningServer.options(models: [prod.path], dir: prod.dir, ledger: true)
        o.shadowPaths = [cand.path]
        let s = try await RunningServer(options: o)
        let c = s.unixClient()
        // 60 patients aged 60, lactate 1.00-2.45, alternating sex; outcomes for the first 50.
        // v1 decides positive from lactate 2 (Female) or 1.595 (Male), v2 from 1.833 or 1.496,
        // so the rows in between flip.
        var records: [(age: Double, lactate: Double, sex: String)] = []
        for i in 0..<60 { records.append((60, 1 + Double(i % 30) * 0.05, i % 2 == 0 ? "F" : "M")) }
        let body = "[" + records.enumerated().map { i, r in toyRecord(id: "p\(i)", age: r.age, lactate: r.lactate, sex: r.sex) }.joined(separator: ",") + "]"
        let r = try await c.send("POST", "/v1/models/toy/score", json: body)
        #expect(r.status == 200, "\(r.text)")
        let ids = r.array.compactMap { $0["prediction_id"] as? String }
        #expect(try await Self.eventually {
            Self.overall(try await c.send("GET", "/v1/models/toy/monitor").object["shadow"] as? [String: Any] ?? [:])["predictions"] as? Int == 60
        })
        let labels = (0..<50).map { ($0 * 3) % 5 < 2 }
        let outcomes = "[" + (0..<50).map { #"{"prediction_id": "\#(ids[$0])", "label": \#(labels[$0] ? 1 : 0)}"# }.joined(separator: ",") + "]"
        #expect(try await c.send("POST", "/v1/models/toy/outcomes", json: outcomes).status == 200)
        try await s.stop()

        let out = prod.dir.file("compare.json")
        let run = try CLI.run(["compare", "--baseline", prod.path, "--candidate", cand.path, "--ledger", o.ledger!, "--group", "sex",
                               "--bootstrap", "50", "--min-group-size", "5", "--json", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("10 no outcome yet"), "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
        #expect((report["input"] as? [String: Any])?["rows"] as? Int == 50, "\(report["input"] ?? "")")
        // Flips as served: v1 and v2 risks against the same thresholds (Female 0.5, Male 0.4).
        var expected = 0
        for (i, rec) in records.prefix(50).enumerated() {
            let t = rec.sex == "F" ? 0.5 : 0.4
            let r1 = 1 / (1 + exp(-(0.05 * rec.age + rec.lactate - 5))), r2 = 1 / (1 + exp(-(0.05 * rec.age + 1.2 * rec.lactate - 5.2)))
            if (r1 >= t) != (r2 >= t) { expected += 1 }
            _ = i
        }
        let flips = try #require((report["overall"] as? [String: Any])?["flips"] as? [String: Any])
        #expect(flips["total"] as? Int == expected, "\(flips), expected \(expected)")
        #expect(expected > 0, "the fixture should flip some decisions")
        // Versions that never ran together: refused, naming both.
        let other = try Self.toyV2(name: "toy")
        defer { other.remove() }
        try other.dir.write("model.linear.json", """
            {"format": "vigil-linear", "version": 1, "link": "logistic", "features": ["age", "lactate"], "coefficients": [0.04, 1.0], "intercept": -5.0}
            """)
        var m = try JSONSerialization.jsonObject(with: Data(contentsOf: other.dir.file("manifest.json"))) as! [String: Any]
        var model = m["model"] as! [String: Any]
        model["sha256"] = try SHA256Digest.hex(ofFileAt: other.dir.file("model.linear.json"))
        m["model"] = model
        try JSONSerialization.data(withJSONObject: m).write(to: other.dir.file("manifest.json"))
        let none = try CLI.run(["compare", "--baseline", prod.path, "--candidate", other.path, "--ledger", o.ledger!, "--group", "sex", "--json", out.path])
        #expect(none.status == 1 && none.stderr.contains("no request was scored by both"), "\(none.stderr)")
        // Both a cohort and a ledger: a usage error.
        let both = try CLI.run(["compare", "--baseline", prod.path, "--candidate", cand.path, "--ledger", o.ledger!, "--input", "x.csv", "--label", "y", "--group", "sex", "--json", out.path])
        #expect(both.status == 2, "\(both.stderr)")
    }
}
