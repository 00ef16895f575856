import Foundation
import Testing
import VigilEngine
import VigilServer
import VigilTesting

/// Observation histories and FHIR R4 on the sepsis package's declared pipeline: a native
/// `history` record, a FHIR Bundle of the same stay and the stay's feature row as computed by
/// the training script all score the same; a RiskAssessment and its Provenance; every problem an
/// OperationOutcome naming the element. (scripts/fhir/check_fhir.py validates the resources
/// with fhir.resources against a running server.)
struct FHIRTests {
    static let sepsis = Fixtures.repositoryRoot.appendingPathComponent("models/sepsis").path

    /// The raw rows and the training script's feature rows of one fixture stay that starts at
    /// ICULOS 1 (so a FHIR Encounter's start is its first hour), with at least `hours` rows.
    static func stay(hours: Int = 12) throws -> (id: String, raw: [[String: String]], features: [String: String]) {
        let raw = try FixtureTable(contentsOf: Fixtures.url("pipeline/sepsis_events.csv"))
        let feats = try FixtureTable(contentsOf: Fixtures.url("pipeline/sepsis_features.csv"))
        var byStay: [String: [[String: String]]] = [:]
        var order: [String] = []
        for r in raw.rows {
            let d = Dictionary(uniqueKeysWithValues: zip(raw.header, r))
            if byStay[d["patient_id"]!] == nil { order.append(d["patient_id"]!) }
            byStay[d["patient_id"]!, default: []].append(d)
        }
        let id = try #require(order.first { byStay[$0]!.count >= hours && byStay[$0]![0]["ICULOS"] == "1" })
        let rows = Array(byStay[id]!.prefix(hours))
        let rowID = "\(id):h\(rows.last!["ICULOS"]!)"
        let f = try #require(feats.rows.first { $0[0] == rowID })
        return (id, rows, Dictionary(uniqueKeysWithValues: zip(feats.header, f)))
    }

    static let observationInputs = ["HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp", "Lactate", "WBC", "Creatinine", "BUN", "Platelets",
                                    "Bilirubin_total", "Glucose", "Hgb", "Hct", "Potassium", "Calcium", "Magnesium", "Phosphate", "FiO2", "pH", "PaCO2", "AST", "PTT"]

    static func featureRecord(_ f: [String: String], model: VigilModel) -> String {
        "{" + model.schema.names.map { "\"\($0)\": \(f[$0]!.isEmpty ? "null" : f[$0]!)" }.joined(separator: ", ") + "}"
    }

    static func historyRecord(_ raw: [[String: String]]) -> String {
        var obs: [String] = []
        for r in raw {
            for name in observationInputs where !r[name]!.isEmpty { obs.append("{\"input\": \"\(name)\", \"time\": \(r["ICULOS"]!), \"value\": \(r[name]!)}") }
        }
        let last = raw.last!
        return """
            {"history": {"entity": "\(raw[0]["patient_id"]!)", "start": \(raw[0]["ICULOS"]!), "at": \(last["ICULOS"]!),
              "static": {"Age": \(last["Age"]!), "Gender": \(last["Gender"]!), "HospAdmTime": \(last["HospAdmTime"]!)},
              "observations": [\(obs.joined(separator: ", "))]}}
            """
    }

    static let loinc: [String: String] = [
        "HR": "8867-4", "O2Sat": "59408-5", "Temp": "8310-5", "SBP": "8480-6", "MAP": "8478-0", "DBP": "8462-4", "Resp": "9279-1",
        "Lactate": "2524-7", "WBC": "6690-2", "Creatinine": "2160-0", "BUN": "3094-0", "Platelets": "777-3", "Bilirubin_total": "1975-2",
        "Glucose": "2345-7", "Hgb": "718-7", "Hct": "4544-3", "Potassium": "2823-3", "Calcium": "17861-6", "Magnesium": "19123-9",
        "Phosphate": "2777-1", "FiO2": "3150-0", "pH": "2744-1", "PaCO2": "2019-8", "AST": "1920-8", "PTT": "14979-9",
    ]
    static let ucum: [String: String] = [
        "HR": "/min", "O2Sat": "%", "Temp": "Cel", "SBP": "mm[Hg]", "MAP": "mm[Hg]", "DBP": "mm[Hg]", "Resp": "/min", "Lactate": "mmol/L",
        "WBC": "10*3/uL", "Creatinine": "mg/dL", "BUN": "mg/dL", "Platelets": "10*3/uL", "Bilirubin_total": "mg/dL", "Glucose": "mg/dL",
        "Hgb": "g/dL", "Hct": "%", "Potassium": "mmol/L", "Calcium": "mg/dL", "Magnesium": "mg/dL", "Phosphate": "mg/dL", "FiO2": "1",
        "pH": "[pH]", "PaCO2": "mm[Hg]", "AST": "U/L", "PTT": "s",
    ]

    /// A Bundle of the stay: the ICU Encounter starts 2026-12-01T00:00Z (ICULOS 1 = its first
    /// hour), each hour's values are Observations at 30 minutes past that hour; the patient's
    /// birth date gives the stay's Age on the scoring day.
    static func bundle(_ raw: [[String: String]], encounter: Bool = true, fio2Percent: Bool = false) -> String {
        var entries: [String] = []
        let last = raw.last!
        let age = Int(Double(last["Age"]!)!)
        entries.append(#"{"fullUrl": "urn:uuid:0b9e7d36-0000-4000-8000-000000000001", "resource": {"resourceType": "Patient", "id": "pt1", "gender": "\#(Double(last["Gender"]!) == 1 ? "male" : "female")", "birthDate": "\#(2026 - age - 1)-12-31"}}"#)
        if encounter {
            entries.append(#"{"resource": {"resourceType": "Encounter", "id": "enc1", "status": "in-progress", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ACUTE"}, "period": {"start": "2026-12-01T00:00:00Z"}, "extension": [{"url": "http://vigil.dev/fhir/StructureDefinition/hospital-admission-offset", "valueDecimal": \#(last["HospAdmTime"]!)}]}}"#)
        }
        var k = 0
        for r in raw {
            let hour = Int(r["ICULOS"]!)! - 1
            for name in observationInputs where !r[name]!.isEmpty {
                k += 1
                var value = r[name]!, unit = ucum[name]!
                if name == "FiO2", fio2Percent { value = "\(Double(value)! * 100)"; unit = "%" }
                let time = String(format: "2026-12-%02dT%02d:30:00Z", 1 + hour / 24, hour % 24)
                entries.append(#"{"resource": {"resourceType": "Observation", "id": "o\#(k)", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "\#(loinc[name]!)"}]}, "subject": {"reference": "Patient/pt1"}, "effectiveDateTime": "\#(time)", "valueQuantity": {"value": \#(value), "system": "http://unitsofmeasure.org", "code": "\#(unit)"}}}"#)
            }
        }
        return #"{"resourceType": "Bundle", "type": "collection", "entry": [\#(entries.joined(separator: ", "))]}"#
    }

    static func json(_ data: Data) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]) }

    @Test func historyFHIRAndFeatureRowScoreTheSame() async throws {
        let dir = try TemporaryDirectory("vigil-fhir")
        defer { dir.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [Self.sepsis], dir: dir, ledger: true))
        let c = s.unixClient()
        let model = try VigilModel.load(path: Self.sepsis)
        let (_, raw, features) = try Self.stay(hours: 12)
        func post(_ path: String, _ body: String) async throws -> LoopbackHTTPClient.Response {
            try await offPool { try c.request("POST", path, body: Data(body.utf8), headers: ["Content-Type": "application/json"]) }
        }
        let byFeatures = try await post("/v1/models/sepsis/score", Self.featureRecord(features, model: model))
        #expect(byFeatures.status == 200, "\(byFeatures.text)")
        let byHistory = try await post("/v1/models/sepsis/score", Self.historyRecord(raw))
        #expect(byHistory.status == 200, "\(byHistory.text)")
        let a = try Self.json(byFeatures.body), b = try Self.json(byHistory.body)
        let risk = try #require(a["risk"] as? Double)
        #expect(b["risk"] as? Double == risk)
        #expect(b["id"] as? String == features["row_id"], "the pipeline's record id: \(b["id"] ?? "")")
        #expect(b["decision"] as? Bool == a["decision"] as? Bool && b["threshold"] as? Double == a["threshold"] as? Double)

        // Scored at 30 minutes past the last row's hour (ICULOS 12 = 11:00-12:00).
        let at = "?at=" + String(format: "2026-12-01T%02d:30:00Z", raw.count - 1)
        let fhir = try await post("/fhir/sepsis/$score" + at, Self.bundle(raw))
        #expect(fhir.status == 200, "\(fhir.text)")
        #expect(fhir.headers["content-type"]?.hasPrefix("application/fhir+json") == true)
        let ra = try Self.json(fhir.body)
        #expect(ra["resourceType"] as? String == "RiskAssessment" && ra["status"] as? String == "final")
        let prediction = try #require((ra["prediction"] as? [[String: Any]])?.first)
        #expect(prediction["probabilityDecimal"] as? Double == risk, "FHIR \(prediction["probabilityDecimal"] ?? "") vs features \(risk)")
        let coding = try #require(((prediction["qualitativeRisk"] as? [String: Any])?["coding"] as? [[String: Any]])?.first)
        #expect(coding["code"] as? String == ((a["decision"] as? Bool) == true ? "high" : "low"))
        #expect(ra["occurrenceDateTime"] as? String == String(format: "2026-12-01T%02d:30:00.000Z", raw.count - 1))
        let basis = try #require(ra["basis"] as? [[String: Any]])
        #expect(basis.first?["reference"] as? String == "urn:uuid:0b9e7d36-0000-4000-8000-000000000001" && basis.count > 10)
        #expect((ra["subject"] as? [String: Any])?["reference"] as? String == "urn:uuid:0b9e7d36-0000-4000-8000-000000000001")
        let method = try #require(ra["method"] as? [String: Any])
        #expect((method["text"] as? String)?.contains(model.sha256) == true)
        let notes = try #require(ra["note"] as? [[String: Any]]).compactMap { $0["text"] as? String }
        #expect(notes.contains { $0.hasPrefix("threshold ") && $0.contains("sex=") }, "\(notes)")
        #expect(notes.contains { $0.contains("audit ledger entry") })

        // FiO2 sent in % (LOINC's unit) converts to the fraction the model was trained on.
        let percent = try await post("/fhir/sepsis/$score" + at, Self.bundle(raw, fio2Percent: true))
        let pr = try #require(((try Self.json(percent.body))["prediction"] as? [[String: Any]])?.first)
        #expect(pr["probabilityDecimal"] as? Double == risk)

        // With provenance: a collection Bundle of the RiskAssessment and its Provenance.
        let withProv = try await post("/fhir/sepsis/$score" + at + "&provenance=true", Self.bundle(raw))
        let bundle = try Self.json(withProv.body)
        let entries = try #require(bundle["entry"] as? [[String: Any]])
        #expect(bundle["type"] as? String == "collection" && entries.count == 2)
        let prov = try #require(entries.last?["resource"] as? [String: Any])
        #expect(prov["resourceType"] as? String == "Provenance")
        #expect(((prov["target"] as? [[String: Any]])?.first?["reference"] as? String) == entries.first?["fullUrl"] as? String)
    }

    @Test func problemsAnswerAnOperationOutcomeNamingTheElement() async throws {
        let dir = try TemporaryDirectory("vigil-fhir")
        defer { dir.remove() }
        let toy = try ToyPackage()
        defer { toy.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [Self.sepsis, toy.path], dir: dir))
        let c = s.unixClient()
        let (_, raw, _) = try Self.stay(hours: 3)
        func outcome(_ path: String, _ body: String) async throws -> (Int, [[String: Any]]) {
            let r = try await offPool { try c.request("POST", path, body: Data(body.utf8), headers: ["Content-Type": "application/fhir+json"]) }
            #expect(r.headers["content-type"]?.hasPrefix("application/fhir+json") == true, "\(path): \(r.headers)")
            let o = try Self.json(r.body)
            #expect(o["resourceType"] as? String == "OperationOutcome", "\(r.text)")
            return (r.status, o["issue"] as? [[String: Any]] ?? [])
        }
        func has(_ issues: [[String: Any]], _ text: String, at expression: String? = nil) -> Bool {
            issues.contains { ($0["diagnostics"] as? String)?.contains(text) == true && (expression == nil || ($0["expression"] as? [String])?.first?.contains(expression!) == true) }
        }
        var (status, issues) = try await outcome("/fhir/sepsis/$score", #"{"resourceType": "Patient"}"#)
        #expect(status == 400 && has(issues, "must be a FHIR R4 Bundle"))
        (status, issues) = try await outcome("/fhir/sepsis/$score", "{not json")
        #expect(status == 400 && has(issues, "not valid JSON"))
        (status, issues) = try await outcome("/fhir/nope/$score", Self.bundle(raw))
        #expect(status == 404 && has(issues, "'nope': not served here"))
        (status, issues) = try await outcome("/fhir/sepsis/$score", Self.bundle(raw, encounter: false))
        #expect(status == 422 && has(issues, "no Encounter resource"), "\(issues)")
        // No Patient: the required statics have no source either.
        let noPatient = Self.bundle(raw).replacingOccurrences(of: #""resourceType": "Patient""#, with: #""resourceType": "Person""#)
        (status, issues) = try await outcome("/fhir/sepsis/$score", noPatient)
        #expect(status == 422 && has(issues, "no Patient resource"), "\(issues)")
        // A creatinine in umol/L cannot become mg/dL without a molar mass; a bad time; a partial birth date.
        var bad = Self.bundle(raw).replacingOccurrences(of: #""code": "mg/dL""#, with: #""code": "umol/L""#)
        let firstTime = try #require(bad.range(of: #"T\d\d:30:00Z"#, options: .regularExpression))
        bad.replaceSubrange(firstTime, with: "T01:30")
        bad = bad.replacingOccurrences(of: #""birthDate": "19"#, with: #""birthDate": "x19"#)
        (status, issues) = try await outcome("/fhir/sepsis/$score", bad)
        #expect(status == 422, "\(issues)")
        #expect(has(issues, "'umol/L' cannot be converted to 'mg/dL'", at: ".valueQuantity.code"), "\(issues)")
        #expect(has(issues, "has no effectiveDateTime", at: "Bundle.entry["), "\(issues)")
        #expect(has(issues, "must be a full date", at: ".birthDate"), "\(issues)")
        // A model without FHIR bindings says so.
        (status, issues) = try await outcome("/fhir/toy/$score", Self.bundle(raw))
        #expect(status == 422 && has(issues, "declares no FHIR bindings"))
        (status, issues) = try await outcome("/fhir/sepsis/$score?provenance=maybe", Self.bundle(raw))
        #expect(status == 400 && has(issues, "query provenance"))
        (status, issues) = try await outcome("/fhir/sepsis/$score?at=yesterday", Self.bundle(raw))
        #expect(status == 400 && has(issues, "query at"))
    }

    @Test func historyRecordsAreReadStrictly() async throws {
        let dir = try TemporaryDirectory("vigil-fhir")
        defer { dir.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [Self.sepsis], dir: dir))
        let c = s.unixClient()
        let cases: [(String, String)] = [
            (#"{"history": {"entity": "p", "observations": [{"input": "HR", "time": 1, "value": 80, "when": 2}]}}"#, "observations[0].when: unknown key"),
            (#"{"history": {"entity": "p", "observations": [{"input": "Age", "time": 1, "value": 80}]}}"#, "observations[0].input: must name an observation input"),
            (#"{"history": {"entity": "p", "observations": [{"input": "HR", "time": "noon", "value": 80}]}}"#, "observations[0].time: value"),
            (#"{"history": {"entity": "p", "observations": [{"input": "HR", "time": 1, "value": "fast"}]}}"#, "field 'value': value 'fast'"),
            (#"{"history": {"entity": "p", "observations": [{"input": "Creatinine", "time": 1, "value": 90, "unit": "umol/L"}]}}"#, "'umol/L' cannot be converted to Creatinine's unit 'mg/dL'"),
            (#"{"history": {"entity": "p", "static": {"HR": 3}}}"#, "static.HR: not a static input"),
            (#"{"history": {"entity": "p"}}"#, "nothing says when to score"),
            (#"{"history": {"entity": "p", "start": 5, "at": 2}}"#, "at: 2 is before start 5"),
            (#"{"history": {"entity": ""}}"#, "history.entity: required"),
            (#"{"history": {"entity": "p", "at": 1}, "extra": 1}"#, "field 'extra': unknown"),
        ]
        for (body, rule) in cases {
            let r = try await offPool { try c.request("POST", "/v1/models/sepsis/score", body: Data(body.utf8), headers: ["Content-Type": "application/json"]) }
            #expect(r.status == 400 && r.text.contains(rule), "\(rule): \(r.status) \(r.text)")
        }
        // Observations in any order: 50,000 heart rates in reverse time order score as in order
        // (appended, then sorted once: never an insertion per observation).
        let hr = (0..<50_000).map { k in #"{"input": "HR", "time": \#(Double(k) / 1000), "value": \#(60 + k % 50)}"# }
        @Sendable func rec(_ obs: [String]) -> String { #"{"history": {"entity": "p", "start": 0, "at": 50, "static": {"Age": 50, "Gender": 1, "HospAdmTime": 0}, "observations": [\#(obs.joined(separator: ","))]}}"# }
        let forward = Data(rec(hr).utf8), backward = Data(rec(hr.reversed()).utf8)
        let inOrder = try await offPool { try c.request("POST", "/v1/models/sepsis/score", body: forward, headers: [:]) }
        let reversed = try await offPool { try c.request("POST", "/v1/models/sepsis/score", body: backward, headers: [:]) }
        #expect(inOrder.status == 200 && reversed.status == 200, "\(reversed.text.prefix(200))")
        #expect(try Self.json(inOrder.body)["risk"] as? Double == Self.json(reversed.body)["risk"] as? Double)
        // Units convert on the way in: 98.6 degF is 37 Cel.
        let f = #"{"history": {"entity": "p", "at": 2, "static": {"Age": 50, "Gender": 0, "HospAdmTime": 0}, "observations": [{"input": "Temp", "time": 1, "value": 98.6, "unit": "[degF]"}]}}"#
        let cel = #"{"history": {"entity": "p", "at": 2, "static": {"Age": 50, "Gender": 0, "HospAdmTime": 0}, "observations": [{"input": "Temp", "time": 1, "value": 37}]}}"#
        let rf = try await offPool { try c.request("POST", "/v1/models/sepsis/score", body: Data(f.utf8), headers: [:]) }
        let rc = try await offPool { try c.request("POST", "/v1/models/sepsis/score", body: Data(cel.utf8), headers: [:]) }
        #expect(rf.status == 200 && rc.status == 200)
        #expect(try Self.json(rf.body)["risk"] as? Double == Self.json(rc.body)["risk"] as? Double)
    }

    /// A CDS Hooks prefetch holding the Bundle's resources: patient, encounter, observations (a searchset).
    static func prefetch(_ raw: [[String: String]], encounter: Bool = true) throws -> String {
        let b = try #require(try JSONSerialization.jsonObject(with: Data(bundle(raw, encounter: encounter).utf8)) as? [String: Any])
        let entries = try #require(b["entry"] as? [[String: Any]])
        func resource(_ type: String) -> [String: Any]? { entries.compactMap { $0["resource"] as? [String: Any] }.first { $0["resourceType"] as? String == type } }
        let obs = entries.filter { ($0["resource"] as? [String: Any])?["resourceType"] as? String == "Observation" }
        let search: [String: Any] = ["resourceType": "Bundle", "type": "searchset", "entry": obs]
        var pre: [String: Any] = ["patient": resource("Patient")!, "observations": search]
        pre["encounter"] = encounter ? resource("Encounter")! : NSNull()
        return String(decoding: try JSONSerialization.data(withJSONObject: pre), as: UTF8.self)
    }

    @Test func cdsHooksDiscoveryCardAndFeedback() async throws {
        let dir = try TemporaryDirectory("vigil-cds")
        defer { dir.remove() }
        let toy = try ToyPackage()
        defer { toy.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [Self.sepsis, toy.path], dir: dir, ledger: true))
        let c = s.unixClient()
        func call(_ method: String, _ path: String, _ body: String? = nil) async throws -> LoopbackHTTPClient.Response {
            try await offPool { try c.request(method, path, body: body.map { Data($0.utf8) }, headers: ["Content-Type": "application/json", "Host": "vigil.test"]) }
        }
        // Discovery: one patient-view service, for the model with FHIR bindings only.
        let d = try Self.json(try await call("GET", "/cds-services").body)
        let services = try #require(d["services"] as? [[String: Any]])
        #expect(services.count == 1 && services[0]["id"] as? String == "sepsis" && services[0]["hook"] as? String == "patient-view")
        let pre = try #require(services[0]["prefetch"] as? [String: String])
        #expect(pre["patient"] == "Patient/{{context.patientId}}" && pre["observations"]?.contains("http://loinc.org|8867-4") == true)

        let (_, raw, features) = try Self.stay(hours: 12)
        let model = try VigilModel.load(path: Self.sepsis)
        let byFeatures = try Self.json(try await call("POST", "/v1/models/sepsis/score", Self.featureRecord(features, model: model)).body)
        let risk = try #require(byFeatures["risk"] as? Double)
        let hook = #"{"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": {"userId": "Practitioner/1", "patientId": "pt1", "encounterId": "enc1"}, "prefetch": \#(try Self.prefetch(raw))}"#
        let r = try await call("POST", "/cds-services/sepsis", hook)
        #expect(r.status == 200, "\(r.text)")
        let cards = try #require(try Self.json(r.body)["cards"] as? [[String: Any]])
        #expect(cards.count == 1)
        let card = cards[0]
        let summary = try #require(card["summary"] as? String)
        #expect(summary.count < 140 && summary.hasPrefix("sepsis: risk "), "\(summary)")
        let positive = byFeatures["decision"] as? Bool == true
        #expect(card["indicator"] as? String == (positive ? "warning" : "info"))
        let detail = try #require(card["detail"] as? String)
        #expect(detail.contains("Largest contributions") && detail.contains("Threshold "), "\(detail)")
        let url = try #require((card["source"] as? [String: Any])?["url"] as? String)
        #expect(url.hasPrefix("http://") && url.hasSuffix("/v1/models/sepsis/card"), "\(url)")
        #expect((card["links"] as? [[String: Any]])?.first?["type"] as? String == "absolute")
        let uuid = try #require(card["uuid"] as? String)
        #expect(uuid.count == 36)
        // The card's prediction is the ledger's, with the hook instance as its record id.
        let ledger = try String(contentsOfFile: dir.file("ledger.jsonl").path, encoding: .utf8)
        #expect(ledger.contains(#""record_id":"cds:d1577c69-dfbe-44ad-ba6d-3e05e953b2ea""#))
        // The record behind the card scores as the feature row does.
        let pct = risk * 100 >= 1 ? String(format: "%.1f%%", risk * 100) : String(format: "%.2g%%", risk * 100)
        #expect(detail.contains("**Risk \(pct)**"), "\(detail)")
        let cardDoc = try await call("GET", "/v1/models/sepsis/card")
        #expect(cardDoc.status == 200 && cardDoc.text.contains("sepsis"))

        // Feedback: accepted and overridden, counted by group in the monitor.
        let fb = #"{"feedback": [{"card": "\#(uuid)", "outcome": "overridden", "overrideReason": {"reason": {"code": "clinical-assessment", "system": "urn:vigil:override-reason"}, "userComment": "known"}, "outcomeTimestamp": "2026-12-04T10:15:00Z"}]}"#
        #expect(try await call("POST", "/cds-services/sepsis/feedback", fb).status == 200)
        let mon = try Self.json(try await call("GET", "/v1/models/sepsis/monitor").body)
        let cds = try #require(mon["cds_feedback"] as? [String: Any])
        #expect(cds["overridden"] as? Int == 1 && cds["accepted"] as? Int == 0 && cds["override_rate"] as? Double == 1)

        // Refusals: an unknown card, a wrong hook, no prefetch, an unknown service.
        let unknown = fb.replacingOccurrences(of: String(uuid.suffix(4)), with: "ffff")
        #expect(try await call("POST", "/cds-services/sepsis/feedback", unknown).status == 404)
        #expect(try await call("POST", "/cds-services/sepsis", hook.replacingOccurrences(of: "patient-view", with: "order-sign")).status == 400)
        let noPrefetch = #"{"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2eb", "context": {"patientId": "pt1"}}"#
        #expect(try await call("POST", "/cds-services/sepsis", noPrefetch).status == 412)
        #expect(try await call("POST", "/cds-services/toy", hook).status == 404)
        // Without the Encounter: a card saying why no risk was computed.
        let noEnc = #"{"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ec", "context": {"patientId": "pt1"}, "prefetch": \#(try Self.prefetch(raw, encounter: false))}"#
        let nr = try await call("POST", "/cds-services/sepsis", noEnc)
        let ncard = try #require((try Self.json(nr.body)["cards"] as? [[String: Any]])?.first)
        #expect((ncard["summary"] as? String)?.contains("not computed") == true && (ncard["detail"] as? String)?.contains("no Encounter") == true)
    }

    /// A toy package whose pipeline reads a Condition (diabetes, SNOMED CT) as 0/1, a lactate
    /// Observation and the age, and takes its groups from FHIR: race from the US Core race
    /// extension (ombCategory code, mapped), sex from Patient.gender.
    static func toyFHIRPackage() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory("vigil-fhir-toy")
        let modelURL = try dir.write("model.linear.json", #"{"format": "vigil-linear", "version": 1, "link": "logistic", "features": ["age", "lactate", "diabetes"], "coefficients": [0.05, 1.0, 0.5], "intercept": -5.0}"#)
        let sha = try SHA256Digest.hex(ofFileAt: modelURL)
        try dir.write("manifest.json", #"""
            {"schema": "vigil.manifest/1", "name": "toyfhir", "version": "1.0.0", "task": "binary", "outcome": "toy outcome",
             "model": {"file": "model.linear.json", "format": "linear-json", "sha256": "\#(sha)"},
             "features": [{"name": "age", "type": "numeric", "missing_allowed": false}, {"name": "lactate", "type": "numeric"}, {"name": "diabetes", "type": "binary"}],
             "groups": [{"name": "race", "source": "field", "field": "race", "map": {"White": "White", "Black": "Black"}, "other": "Other", "missing": "Unknown"},
                        {"name": "sex", "source": "field", "field": "gender", "map": {"female": "Female", "male": "Male"}, "other": "Unknown", "missing": "Unknown"}],
             "pipeline": {"entity": "stay", "time": {"field": "hour", "unit": "h", "origin_value": 0},
               "inputs": [{"name": "lactate", "kind": "observation", "unit": "mmol/L", "fhir": {"observation": {"system": "http://loinc.org", "code": "2524-7"}}},
                          {"name": "age", "kind": "static", "unit": "a", "fhir": {"patient": "age"}},
                          {"name": "diabetes", "kind": "static", "fhir": {"condition": {"system": "http://snomed.info/sct", "code": "44054006"}}}],
               "features": {"age": {"op": "static", "input": "age"}, "lactate": {"op": "last", "input": "lactate"}, "diabetes": {"op": "static", "input": "diabetes"}},
               "groups": [{"field": "race", "fhir": {"extension": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "map": {"2106-3": "White", "2054-5": "Black"}}},
                          {"field": "gender", "fhir": {"patient": "gender"}}]}}
            """#)
        return dir
    }

    @Test func conditionsAndUSCoreRaceMapThroughTheDeclaration() async throws {
        let pkg = try Self.toyFHIRPackage()
        defer { pkg.remove() }
        let dir = try TemporaryDirectory("vigil-fhir")
        defer { dir.remove() }
        let s = try await RunningServer(options: RunningServer.options(models: [pkg.url.path], dir: dir))
        let c = s.unixClient()
        @Sendable func bundle(condition: String) -> String {
            #"""
            {"resourceType": "Bundle", "type": "collection", "entry": [
              {"resource": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1966-06-01",
                "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
                  {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2054-5", "display": "Black or African American"}},
                  {"url": "text", "valueString": "Black or African American"}]}]}},
              {"resource": {"resourceType": "Encounter", "id": "e", "status": "in-progress", "class": {"code": "IMP"}, "period": {"start": "2026-12-01T00:00:00Z"}}},
              {"resource": {"resourceType": "Condition", "id": "c", \#(condition) "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}, "subject": {"reference": "Patient/p"}}},
              {"resource": {"resourceType": "Observation", "id": "o", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "2524-7"}]},
                "effectiveDateTime": "2026-12-01T02:00:00Z", "valueQuantity": {"value": 18, "code": "mg/dL"}}}]}
            """#
        }
        // Lactate 18 mg/dL is a mass concentration: refused, not guessed into mmol/L.
        let refused = try await offPool { try c.request("POST", "/fhir/toyfhir/$score", body: Data(bundle(condition: "").utf8), headers: [:]) }
        #expect(refused.status == 422 && refused.text.contains("'mg/dL' cannot be converted to 'mmol/L'"), "\(refused.text)")
        for (condition, diabetes) in [("", 1.0), (#""clinicalStatus": {"coding": [{"code": "resolved"}]},"#, 0.0)] {
            let body = bundle(condition: condition).replacingOccurrences(of: #""value": 18, "code": "mg/dL""#, with: #""value": 2, "code": "mmol/L""#)
            let r = try await offPool { try c.request("POST", "/fhir/toyfhir/$score", body: Data(body.utf8), headers: [:]) }
            #expect(r.status == 200, "\(r.text)")
            let ra = try Self.json(r.body)
            let p = try #require((ra["prediction"] as? [[String: Any]])?.first?["probabilityDecimal"] as? Double)
            let want = 1 / (1 + exp(-(0.05 * 60 + 2 + 0.5 * diabetes - 5)))
            #expect(abs(p - want) < 1e-12, "diabetes \(diabetes): \(p) vs \(want)")
        }
        // Both FHIR predictions were counted under the groups read from FHIR.
        let mon = try await offPool { try c.request("GET", "/v1/models/toyfhir/monitor") }
        let joint = try #require(try Self.json(mon.body)["joint_groups"] as? [String: Any])
        #expect(joint.keys.count == 1 && joint.keys.first?.contains("Black") == true && joint.keys.first?.contains("Female") == true, "\(joint.keys)")
        let rec = try await offPool { try c.request("POST", "/v1/models/toyfhir/score", body: Data(#"{"history": {"entity": "s", "at": 1, "static": {"age": 60, "diabetes": 1}, "observations": [{"input": "lactate", "time": 0, "value": 2}]}, "race": "White", "gender": "male"}"#.utf8), headers: [:]) }
        #expect(rec.status == 200 && rec.text.contains(#""race":"White""#) && rec.text.contains(#""sex":"Male""#), "\(rec.text)")
    }
}
