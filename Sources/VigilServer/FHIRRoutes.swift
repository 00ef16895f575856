internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// FHIR R4: `POST /fhir/{model}/$score` takes a Bundle (Patient, Encounter, Observations),
/// derives the features through the model's declared pipeline and FHIR bindings, scores them as
/// `/v1/models/{name}/score` does (guardrails, ledger, monitor, shadow) and answers a
/// `RiskAssessment`, or with `?provenance=true` a `collection` Bundle of the RiskAssessment and
/// a `Provenance`. Problems answer an `OperationOutcome` naming each element (docs/FHIR.md).
extension Routes {
    static let fhirContentType = "application/fhir+json; charset=utf-8"

    func fhirRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.post("fhir/:name/$score") { req, ctx in
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                let name = ctx.parameters.get("name") ?? ""
                guard let m = server.models[name] else {
                    throw FHIRFailure(404, code: "not-found", "model '\(Untrusted.quote(name, limit: 64))': not served here (models: \(server.modelNames.joined(separator: ", ")))")
                }
                let provenance = try Self.flag(req.uri.queryParameters.get("provenance"), name: "provenance")
                var at: Double?
                if let text = req.uri.queryParameters.get("at") {
                    guard let t = FHIRTime.instant(String(text)) else {
                        throw FHIRFailure(400, code: "invalid", "query at: '\(Untrusted.quote(String(text), limit: 40))' is not a FHIR instant (YYYY-MM-DDThh:mm:ss with Z or +hh:mm)")
                    }
                    at = t
                }
                let value = try Self.fhirJSON(try await readBody(req))
                let input = try FHIRInput(bundle: value)
                let (row, mapping) = try await scoreFHIR(m, input, at: at, explain: false)
                server.metrics.request(route: "fhir_score", model: m.model.name, seconds: elapsed(start))
                let assessment = Self.riskAssessment(m.model, row, mapping)
                guard provenance else { return fhir(assessment) }
                let raURL = "urn:uuid:\(Self.uuid(row.predictionID, "RiskAssessment"))"
                let prov = Self.provenance(m.model, row, mapping, target: raURL)
                return fhir("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":\(JSON.string(FHIRTime.text(Date().timeIntervalSince1970))),\"entry\":[{\"fullUrl\":\(JSON.string(raURL)),\"resource\":\(assessment)},{\"fullUrl\":\(JSON.string("urn:uuid:\(Self.uuid(row.predictionID, "Provenance"))")),\"resource\":\(prov)}]}")
            } catch let f as FHIRFailure {
                server.metrics.error(route: "fhir/{name}/$score", status: f.status)
                return fhir(f.operationOutcome, status: f.status)
            } catch let e as ServerError {
                server.metrics.error(route: "fhir/{name}/$score", status: e.status)
                var r = fhir(FHIRFailure(e.status, code: e.status == 413 ? "too-costly" : e.status >= 500 ? "transient" : "invalid", e.message).operationOutcome, status: e.status)
                if let retry = e.retryAfter { r.headers[.retryAfter] = String(retry) }
                return r
            } catch let e as VigilError where e.kind == .input {
                return fhir(FHIRFailure(422, code: "processing", e.message).operationOutcome, status: 422)
            }
        }
        return routes
    }

    /// Scores a FHIR input on `m` (and its shadow): one record.
    func scoreFHIR(_ m: ServedModel, _ input: FHIRInput, at: Double?, explain: Bool, recordID: String? = nil) async throws -> (ScoredRow, FHIRMapping) {
        var mapping = try FHIRMapping(input, model: m.model, at: at)
        mapping.history.id = recordID
        let batch = m.parser.batch([mapping.history])
        let rows = try await m.score(batch, explain: explain)
        m.feedShadow(rows) { p in
            var h = try FHIRMapping(input, model: p.model, at: at).history
            h.id = recordID
            return p.batch([h])
        }
        return (rows[0], mapping)
    }

    func fhir(_ body: String, status: Int = 200) -> Response {
        Response(status: .init(code: status), headers: [.contentType: Self.fhirContentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func fhirJSON(_ data: Data) throws -> JSONValue {
        do { return try JSONValue.parse(data) } catch {
            throw FHIRFailure(400, code: "invalid", "body: not valid JSON (\(error))")
        }
    }

    static func flag(_ text: String?, name: String) throws -> Bool {
        guard let text else { return false }
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw FHIRFailure(400, code: "invalid", "query \(name): '\(Untrusted.quote(String(text), limit: 20))' must be true or false")
        }
    }

    /// A deterministic UUID (name-based, SHA-256 truncated, version 8 bits set) for a resource
    /// made from a prediction, so a retried request names the same resource.
    static func uuid(_ predictionID: String, _ type: String) -> String {
        var h = Array(SHA256Digest.hex(of: Data("\(type)|\(predictionID)".utf8)).prefix(32))
        h[12] = "8"
        h[16] = ["8", "9", "a", "b"][Int(String(h[16]), radix: 16)! & 3]
        let s = String(h)
        let i = s.startIndex
        func part(_ a: Int, _ b: Int) -> Substring { s[s.index(i, offsetBy: a)..<s.index(i, offsetBy: b)] }
        return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))"
    }

    /// The `RiskAssessment` of one scored record.
    static func riskAssessment(_ model: VigilModel, _ row: ScoredRow, _ mapping: FHIRMapping) -> String {
        let r = row.record
        var s = "{\"resourceType\":\"RiskAssessment\",\"id\":\(JSON.string(fhirID(row.predictionID)))"
        s += ",\"identifier\":[{\"system\":\"urn:vigil:prediction-id\",\"value\":\(JSON.string(row.predictionID))}]"
        s += ",\"status\":\"final\""
        s += ",\"method\":{\"coding\":[{\"system\":\"urn:vigil:model\",\"code\":\(JSON.string("\(model.name)@\(model.version)")),\"display\":\(JSON.string("Vigil model \(model.name) \(model.version)"))}]"
        s += ",\"text\":\(JSON.string(methodText(model)))}"
        if let subject = mapping.subject { s += ",\"subject\":{\"reference\":\(JSON.string(subject))}" } else { s += ",\"subject\":{\"display\":\"the Bundle's Patient\"}" }
        if let e = mapping.encounterReference { s += ",\"encounter\":{\"reference\":\(JSON.string(e))}" }
        s += ",\"occurrenceDateTime\":\(JSON.string(FHIRTime.text(mapping.instant)))"
        if !mapping.basis.isEmpty { s += ",\"basis\":[\(mapping.basis.map { "{\"reference\":\(JSON.string($0))}" }.joined(separator: ","))]" }
        var prediction = "{\"outcome\":{\"text\":\(JSON.string(model.manifest?.outcome ?? "the model's outcome"))}"
        if let risk = r.outputs.first, model.makesDecisions {
            prediction += ",\"probabilityDecimal\":\(JSON.number(risk))"
            if let d = r.decision {
                let code = d ? "high" : "low"
                prediction += ",\"qualitativeRisk\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/risk-probability\",\"code\":\"\(code)\",\"display\":\"\(d ? "High likelihood" : "Low likelihood")\"}],\"text\":\(JSON.string(d ? "at or above the decision threshold" : "below the decision threshold"))}"
            }
        }
        prediction += "}"
        s += ",\"prediction\":[\(prediction)]"
        s += ",\"note\":[\(notes(model, row, mapping).map { "{\"text\":\(JSON.string($0))}" }.joined(separator: ","))]}"
        return s
    }

    /// The model's identity in words: version, file SHA-256, policy and package digest.
    static func methodText(_ model: VigilModel) -> String {
        var t = "Vigil \(VigilVersion.current), model \(model.name) \(model.version), model file SHA-256 \(model.sha256)"
        t += ", policy \(model.policy.version)" + (model.policy.sha256.isEmpty ? "" : " (SHA-256 \(model.policy.sha256))")
        if let d = model.packageDigest { t += ", package digest \(d)" }
        return t
    }

    /// The notes: threshold, its group and source, decision, warnings, and what was not used.
    static func notes(_ model: VigilModel, _ row: ScoredRow, _ mapping: FHIRMapping) -> [String] {
        let r = row.record
        var notes: [String] = []
        if let t = r.threshold {
            let group = zip(model.groups, r.groupLabels).map { "\($0.name)=\($1)" }.joined(separator: ", ")
            notes.append("threshold \(JSON.number(t)) for group \(group.isEmpty ? "(all)" : group) (source: \(r.thresholdSource?.label ?? "none")); decision: \(r.decision == true ? "positive" : "negative")")
        }
        if !r.warnings.isEmpty { notes.append("warnings: " + r.warnings.joined(separator: "; ")) }
        notes += mapping.notes
        notes.append("prediction id \(row.predictionID)" + (row.auditSeq.map { ", audit ledger entry \($0)" } ?? ""))
        return notes
    }

    /// A FHIR id ([A-Za-z0-9-.]{1,64}) for a prediction id.
    static func fhirID(_ predictionID: String) -> String {
        let ok = predictionID.utf8.count <= 64 && predictionID.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
        return ok ? predictionID : uuid(predictionID, "id")
    }

    /// The `Provenance` of a RiskAssessment: Vigil as the assembler, the model as the software,
    /// the resources it was derived from as sources.
    static func provenance(_ model: VigilModel, _ row: ScoredRow, _ mapping: FHIRMapping, target: String) -> String {
        var s = "{\"resourceType\":\"Provenance\",\"target\":[{\"reference\":\(JSON.string(target))}]"
        s += ",\"recorded\":\(JSON.string(FHIRTime.text(Date().timeIntervalSince1970)))"
        s += ",\"activity\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-DataOperation\",\"code\":\"CREATE\",\"display\":\"create\"}]}"
        s += ",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/provenance-participant-type\",\"code\":\"assembler\",\"display\":\"Assembler\"}]},\"who\":{\"display\":\(JSON.string(methodText(model)))}}]"
        if !mapping.basis.isEmpty {
            s += ",\"entity\":[\(mapping.basis.map { "{\"role\":\"source\",\"what\":{\"reference\":\(JSON.string($0))}}" }.joined(separator: ","))]"
        }
        return s + "}"
    }
}
