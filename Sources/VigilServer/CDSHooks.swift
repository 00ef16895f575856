internal import Hummingbird
internal import Foundation
internal import VigilEngine
internal import VigilJSON
internal import NIOCore

/// CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): discovery at `GET /cds-services`, one
/// `patient-view` service per served model with FHIR bindings (its id is the model's name),
/// and `POST /cds-services/{id}/feedback`. A hook call's prefetch (Patient, Encounter, the
/// Observations the pipeline reads) goes through the same FHIR mapping as `$score`; the answer is
/// one card: the risk and decision in words, indicator from the decision (`info` below the
/// threshold, `warning` at or above, `critical` at or above `--cds-critical-risk`), the largest
/// contributions in plain language, the threshold's group and source, warnings, and a link to
/// the model card. The ledger's `record_id` is `cds:<hookInstance>`. Vigil never queries the
/// client's `fhirServer`: a call without the prefetch it needs is answered 412.
extension Routes {
    static let cdsHook = "patient-view"

    func cdsRoutes() -> RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("cds-services") { _, _ in
            json("{\"services\":[\(cdsModels().map(cdsService).joined(separator: ","))]}")
        }
        routes.post("cds-services/:name") { req, ctx in
            let start = DispatchTime.now().uptimeNanoseconds
            let m = try cdsModel(ctx)
            let body = try RequestParser.parseJSON(try await readBody(req))
            let call = try CDSCall(body)
            var input = FHIRInput()
            for (key, value) in call.prefetch.sorted(by: { $0.key < $1.key }) {
                guard case .object(let o) = value else { continue }  // null: the client found nothing
                if case .string("Bundle")? = o["resourceType"] {
                    do { try input.add(bundle: o, path: "prefetch.\(key)") } catch let f as FHIRFailure {
                        throw ServerError.badRequest(f.issues.map(\.diagnostics).joined(separator: "; "))
                    }
                } else {
                    input.add(resource: o, path: "prefetch.\(key)")
                }
            }
            guard input.patient != nil else {
                throw ServerError(412, "prefetch.patient: the Patient is required (discovery's prefetch template 'patient'); Vigil does not query the client's fhirServer")
            }
            if case .string(let id)? = input.patient?.json["id"], id != call.patientID {
                throw ServerError.badRequest("prefetch.patient: Patient/\(Untrusted.quote(id, limit: 64)) is not context.patientId \(Untrusted.quote(call.patientID, limit: 64))")
            }
            let explain: Bool = { if case .success = m.model.explainer { return true } else { return false } }()
            let card: String
            do {
                let (row, mapping) = try await scoreFHIR(m, input, at: nil, explain: explain, recordID: "cds:\(call.hookInstance)")
                card = cdsCard(m, row, mapping, link: Self.baseURL(req, tls: server.tls != nil))
            } catch let f as FHIRFailure {
                card = cdsNotComputed(m, f)
            }
            server.metrics.request(route: "cds_service", model: m.model.name, seconds: elapsed(start))
            return json("{\"cards\":[\(card)]}")
        }
        routes.post("cds-services/:name/feedback") { req, ctx in
            let m = try cdsModel(ctx)
            let body = try RequestParser.parseJSON(try await readBody(req))
            try server.recordFeedback(m, body)
            return json("{}")
        }
        routes.get("v1/models/:name/card") { _, ctx in
            let m = try model(ctx)
            guard let dir = m.model.manifest.map({ _ in m.model.modelURL.deletingLastPathComponent() }),
                  let data = FileManager.default.contents(atPath: dir.appendingPathComponent("MODEL_CARD.md").path) else {
                throw ServerError.notFound("model '\(m.model.name)': its package has no MODEL_CARD.md")
            }
            return Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return routes
    }

    /// The served models that offer a CDS service: those whose pipeline binds inputs to FHIR.
    func cdsModels() -> [ServedModel] {
        server.models.values.filter { $0.model.pipeline?.inputs.contains { $0.fhir != nil } == true }.sorted { $0.model.name < $1.model.name }
    }

    func cdsModel(_ ctx: BasicRequestContext) throws -> ServedModel {
        let name = ctx.parameters.get("name") ?? ""
        guard let m = cdsModels().first(where: { $0.model.name == name }) else {
            throw ServerError.notFound("CDS service '\(Untrusted.quote(name, limit: 64))': not offered here (services: \(cdsModels().map(\.model.name).joined(separator: ", ")); see GET /cds-services)")
        }
        return m
    }

    /// One service in discovery: the prefetch templates for the Patient, the Encounter and the
    /// Observations of the codes the pipeline reads.
    func cdsService(_ m: ServedModel) -> String {
        let p = m.model.pipeline!
        let codes = p.inputs.compactMap { i -> String? in
            if case .observation(let system, let code)? = i.fhir { return "\(system)|\(code)" }
            return nil
        }
        // The Encounter always: its period.start is the pipeline's time origin.
        var prefetch = ["\"patient\":\"Patient/{{context.patientId}}\"", "\"encounter\":\"Encounter/{{context.encounterId}}\""]
        if !codes.isEmpty { prefetch.append("\"observations\":\(JSON.string("Observation?patient={{context.patientId}}&code=\(codes.joined(separator: ","))&_count=1000"))") }
        let outcome = m.model.manifest?.outcome ?? "the model's outcome"
        return "{\"hook\":\"\(Self.cdsHook)\",\"id\":\(JSON.string(m.model.name)),\"title\":\(JSON.string("Vigil \(m.model.name) risk"))"
            + ",\"description\":\(JSON.string("Risk of \(outcome), from model \(m.model.name) \(m.model.version) with its fairness guardrails (group thresholds); one card per patient view."))"
            + ",\"prefetch\":{\(prefetch.joined(separator: ","))}"
            + ",\"usageRequirements\":\(JSON.string("Needs the ICU Encounter (period.start is the time origin) and the patient's Observations in prefetch; the service does not query the FHIR server."))}"
    }

    /// The card's UUID for a production prediction `model-N`: the model's name hashed into the
    /// first group, N in the last (so feedback finds the prediction without server state).
    static func cardUUID(model: String, predictionID: String) -> String? {
        guard let dash = predictionID.lastIndex(of: "-"), let seq = UInt64(predictionID[predictionID.index(after: dash)...]), seq < 1 << 48,
              predictionID[..<dash] == model else { return nil }
        let h = SHA256Digest.hex(of: Data("cds|\(model)".utf8)).prefix(8)
        let n = String(seq, radix: 16)
        return "\(h)-0000-8000-8000-\(String(repeating: "0", count: 12 - n.count))\(n)"
    }

    /// The prediction id of a card UUID of `model`, nil when it is not one.
    static func predictionID(model: String, cardUUID: String) -> String? {
        let parts = cardUUID.lowercased().split(separator: "-")
        guard parts.count == 5, parts[0] == SHA256Digest.hex(of: Data("cds|\(model)".utf8)).prefix(8),
              parts[1] == "0000", parts[2] == "8000", parts[3] == "8000", parts[4].count == 12, let seq = UInt64(parts[4], radix: 16) else { return nil }
        return "\(model)-\(seq)"
    }

    /// `http(s)://host` of the request (its Host header), for absolute links.
    static func baseURL(_ req: Request, tls: Bool) -> String? {
        guard let host = req.head.authority, !host.isEmpty, host.utf8.count <= 255,
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:[]".contains($0)) }) else { return nil }
        return "\(tls ? "https" : "http")://\(host)"
    }

    /// A risk as a percentage for people: one decimal, two significant digits below 1%.
    static func percent(_ r: Double) -> String {
        let p = r * 100
        if p >= 1 || p == 0 { return String(format: "%.1f%%", p) }
        return String(format: "%.2g%%", p)
    }

    /// The card of a scored record.
    func cdsCard(_ m: ServedModel, _ row: ScoredRow, _ mapping: FHIRMapping, link: String?) -> String {
        let model = m.model, r = row.record
        let risk = r.outputs.first ?? .nan
        let positive = r.decision == true
        var indicator = positive ? "warning" : "info"
        if positive, let c = server.options.cdsCriticalRisk, risk >= c { indicator = "critical" }
        var summary = "\(model.name): risk \(Self.percent(risk))"
        if let t = r.threshold { summary += positive ? ", at or above the \(Self.percent(t)) alert threshold" : ", below the \(Self.percent(t)) alert threshold" }
        if summary.count > 139 { summary = String(summary.prefix(139)) }
        var detail = "**Risk \(Self.percent(risk))** of \(model.manifest?.outcome ?? "the outcome"), as of \(FHIRTime.text(mapping.instant).prefix(16).replacingOccurrences(of: "T", with: " ")) UTC (the latest observation used)."
        if let t = r.threshold {
            let group = zip(model.groups, r.groupLabels).map { "\($0.name) \($1)" }.joined(separator: ", ")
            detail += "\n\nThreshold \(Self.percent(t)) for this patient's group (\(group.isEmpty ? "all patients" : group); source: \(r.thresholdSource?.label ?? "none"))."
        }
        if let a = r.attribution, a.featureCount == model.schema.count {
            let top = (0..<a.featureCount).sorted { abs(a.contributions[$0]) > abs(a.contributions[$1]) }.prefix(3).filter { a.contributions[$0] != 0 }
            if !top.isEmpty {
                detail += "\n\nLargest contributions (log-odds):"
                for j in top { detail += "\n- " + Self.plainLanguage(model, feature: j, value: a.values[j], contribution: a.contributions[j]) }
            }
        }
        var warnings = r.warnings
        let age = Date().timeIntervalSince1970 - mapping.instant
        if age > 6 * 3600 { warnings.append("the latest observation used is \(Int(age / 3600)) h old") }
        warnings += mapping.notes
        if !warnings.isEmpty { detail += "\n\nWarnings: " + warnings.joined(separator: "; ") + "." }
        detail += "\n\nPrediction \(row.predictionID)" + (row.auditSeq.map { " (audit ledger entry \($0))" } ?? "") + ". Model \(model.name) \(model.version), SHA-256 \(model.sha256.prefix(12))…; decision support only, not a diagnosis."
        var s = "{"
        if let u = Self.cardUUID(model: model.name, predictionID: row.predictionID) { s += "\"uuid\":\"\(u)\"," }
        s += "\"summary\":\(JSON.string(summary)),\"detail\":\(JSON.string(detail)),\"indicator\":\"\(indicator)\""
        s += ",\"source\":{\"label\":\(JSON.string("Vigil \(model.name) \(model.version)"))"
        if let link { s += ",\"url\":\(JSON.string("\(link)/v1/models/\(model.name)/card"))" }
        s += ",\"topic\":{\"system\":\"urn:vigil:cds-topic\",\"code\":\"risk-score\",\"display\":\"Risk score\"}}"
        s += ",\"overrideReasons\":[{\"system\":\"urn:vigil:override-reason\",\"code\":\"clinical-assessment\",\"display\":\"Clinical assessment differs\"},{\"system\":\"urn:vigil:override-reason\",\"code\":\"data-incomplete\",\"display\":\"Data missing or wrong\"}]"
        if let link { s += ",\"links\":[{\"label\":\"Model card\",\"url\":\(JSON.string("\(link)/v1/models/\(model.name)/card")),\"type\":\"absolute\"}]" }
        return s + "}"
    }

    /// The card when the prefetch could not be mapped: says so, and what is missing.
    func cdsNotComputed(_ m: ServedModel, _ f: FHIRFailure) -> String {
        let detail = "Vigil could not compute this risk from the data sent:\n" + f.issues.prefix(10).map { "- \($0.diagnostics)" + ($0.expression.map { " (`\($0)`)" } ?? "") }.joined(separator: "\n")
        return "{\"summary\":\(JSON.string("\(m.model.name): risk not computed (data missing or not usable)")),\"detail\":\(JSON.string(detail)),\"indicator\":\"info\",\"source\":{\"label\":\(JSON.string("Vigil \(m.model.name) \(m.model.version)"))}}"
    }

    /// One contribution in words: the feature's description (up to its first colon or
    /// semicolon), how the pipeline derives it, the value with its unit, the direction and size.
    static func plainLanguage(_ model: VigilModel, feature j: Int, value: Double, contribution: Double) -> String {
        let spec = model.schema.features[j]
        var name = spec.description.map { String($0.prefix { $0 != ":" && $0 != ";" && $0 != "(" }).trimmingCharacters(in: .whitespaces) } ?? spec.name
        if name.isEmpty { name = spec.name }
        if let op = model.pipeline?.operations[j] {
            switch op {
            case .last: name += ", latest value"
            case .change(_, let w): name += ", change over \(MissingValues.canonicalText(w)) \(model.pipeline!.timeUnit)"
            case .timeSince: name += ", \(model.pipeline!.timeUnit) since last measured"
            case .count(_, let w): name += ", count" + (w.map { " over \(MissingValues.canonicalText($0)) \(model.pipeline!.timeUnit)" } ?? "")
            case .minimum(_, let w), .maximum(_, let w), .mean(_, let w):
                name += w.map { " over \(MissingValues.canonicalText($0)) \(model.pipeline!.timeUnit)" } ?? ""
            case .value, .time: break
            }
        }
        let shown = value.isNaN ? "not measured" : MissingValues.canonicalText((value * 1000).rounded() / 1000) + (spec.unit.map { $0 == "indicator" ? "" : " \($0)" } ?? "")
        return "\(name) (\(spec.name)): \(shown), \(contribution > 0 ? "raises" : "lowers") the risk (\(contribution > 0 ? "+" : "")\(String(format: "%.2f", contribution)))"
    }
}

/// A CDS Hooks call, read strictly enough to refuse what is not one.
struct CDSCall {
    let hookInstance: String
    let patientID: String
    let prefetch: [String: JSONValue]

    init(_ body: JSONValue) throws {
        guard case .object(let o) = body else { throw ServerError.badRequest("body: a CDS Hooks request is a JSON object with hook, hookInstance, context and prefetch") }
        for key in o.keys where !["hook", "hookInstance", "context", "prefetch", "fhirServer", "fhirAuthorization"].contains(key) {
            throw ServerError.badRequest("body.\(Untrusted.quote(key, limit: 40)): unknown key (hook, hookInstance, context, prefetch, fhirServer, fhirAuthorization)")
        }
        guard case .string(let hook)? = o["hook"] else { throw ServerError.badRequest("hook: required, \"\(Routes.cdsHook)\"") }
        guard hook == Routes.cdsHook else { throw ServerError.badRequest("hook: '\(Untrusted.quote(hook, limit: 40))' is not served; this service answers \(Routes.cdsHook)") }
        guard case .string(let instance)? = o["hookInstance"], !instance.isEmpty, instance.utf8.count <= 128,
              instance.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw ServerError.badRequest("hookInstance: required, a UUID (letters, digits and '-', at most 128)")
        }
        hookInstance = instance
        guard case .object(let context)? = o["context"], case .string(let pid)? = context["patientId"], !pid.isEmpty, pid.utf8.count <= 64 else {
            throw ServerError.badRequest("context.patientId: required, the FHIR id of the patient in view")
        }
        patientID = pid
        switch o["prefetch"] {
        case .object(let p)?: prefetch = p
        case nil, .null?: throw ServerError(412, "prefetch: required (Patient, Encounter, Observations per GET /cds-services); Vigil does not query the client's fhirServer")
        default: throw ServerError.badRequest("prefetch: must be an object of prefetch key -> resource")
        }
    }
}

extension VigilServer {
    /// `POST /cds-services/{id}/feedback`: each entry's card must be one this service issued for a
    /// prediction this server holds; the outcome (accepted, overridden) is counted by group in the
    /// monitor (`cds_feedback`).
    func recordFeedback(_ m: ServedModel, _ body: JSONValue) throws {
        guard case .object(let o) = body, case .array(let list)? = o["feedback"], !list.isEmpty, list.count <= 1000 else {
            throw ServerError.badRequest("body: {\"feedback\": [{card, outcome, outcomeTimestamp, ...}]} with 1-1000 entries")
        }
        for key in o.keys where key != "feedback" { throw ServerError.badRequest("body.\(Untrusted.quote(key, limit: 40)): unknown key (feedback)") }
        var parsed: [(PredictionInfo, Bool)] = []
        for (k, item) in list.enumerated() {
            let place = "feedback[\(k)]"
            guard case .object(let f) = item else { throw ServerError.badRequest("\(place): must be an object") }
            for key in f.keys where !["card", "outcome", "outcomeTimestamp", "overrideReason", "acceptedSuggestions"].contains(key) {
                throw ServerError.badRequest("\(place).\(Untrusted.quote(key, limit: 40)): unknown key (card, outcome, outcomeTimestamp, overrideReason, acceptedSuggestions)")
            }
            guard case .string(let card)? = f["card"] else { throw ServerError.badRequest("\(place).card: required, the card's uuid") }
            guard case .string(let outcome)? = f["outcome"], outcome == "accepted" || outcome == "overridden" else {
                throw ServerError.badRequest("\(place).outcome: required, accepted or overridden")
            }
            guard case .string(let ts)? = f["outcomeTimestamp"], FHIRTime.instant(ts) != nil else {
                throw ServerError.badRequest("\(place).outcomeTimestamp: required, an instant (e.g. 2026-12-04T10:15:00Z)")
            }
            if let r = f["overrideReason"], r != .null { guard case .object = r else { throw ServerError.badRequest("\(place).overrideReason: must be an object {reason, userComment}") } }
            guard let id = Routes.predictionID(model: m.model.name, cardUUID: card), let info = index.lookup(id), info.model == m.model.name, info.shadowOf == nil else {
                throw ServerError.notFound("\(place).card: '\(Untrusted.quote(card, limit: 64))' is not a card this service issued for a prediction this server holds")
            }
            parsed.append((info, outcome == "accepted"))
        }
        for (info, accepted) in parsed { m.monitor.recordFeedback(labels: info.labels, accepted: accepted) }
    }
}
