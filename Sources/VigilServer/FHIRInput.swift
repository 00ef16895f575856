package import Foundation
package import VigilEngine
package import VigilJSON

/// A FHIR R4 request's problems, answered as an `OperationOutcome` with `status` (400 for a body
/// that is not a Bundle, 422 for resources that are missing or cannot be mapped, 404 for an
/// unknown model). Every problem is listed, each naming the element (FHIRPath `expression`).
package struct FHIRFailure: Error, Sendable {
    package struct Issue: Sendable {
        package let code: String  // OperationOutcome.issue.code (invalid, required, value, not-supported, not-found, processing)
        package let diagnostics: String
        package let expression: String?
    }
    package let status: Int
    package let issues: [Issue]

    package init(_ status: Int, _ issues: [Issue]) {
        self.status = status
        self.issues = issues
    }

    package init(_ status: Int, code: String, _ diagnostics: String, at expression: String? = nil) {
        self.init(status, [Issue(code: code, diagnostics: diagnostics, expression: expression)])
    }

    /// The `OperationOutcome` resource.
    package var operationOutcome: String {
        let list = issues.map { i in
            "{\"severity\":\"error\",\"code\":\(JSON.string(i.code)),\"diagnostics\":\(JSON.string(i.diagnostics))"
                + (i.expression.map { ",\"expression\":[\(JSON.string($0))]" } ?? "") + "}"
        }
        return "{\"resourceType\":\"OperationOutcome\",\"issue\":[\(list.joined(separator: ","))]}"
    }
}

/// The FHIR resources a score is computed from (a `$score` Bundle, or CDS Hooks prefetch): one
/// Patient, the Encounter whose `period.start` is the pipeline's time origin, and Observations;
/// each with the reference a RiskAssessment's `basis` names it by and its FHIRPath in the request.
package struct FHIRInput: Sendable {
    package struct Resource: Sendable {
        package let json: [String: JSONValue]
        package let reference: String?
        package let path: String
    }
    package var patient: Resource?
    package var encounter: Resource?
    package var observations: [Resource] = []
    package var conditions: [Resource] = []
    /// Resources of other types, not read.
    package var others = 0
    var issues: [FHIRFailure.Issue] = []

    package init() {}

    /// The resources of a Bundle (any type: collection, searchset, transaction...). Refused with
    /// 400 when it is not a Bundle, 422 when it has no Patient or several Patients or Encounters.
    package init(bundle: JSONValue, path: String = "Bundle") throws {
        guard case .object(let b) = bundle, case .string("Bundle")? = b["resourceType"] else {
            throw FHIRFailure(400, code: "invalid", "the body must be a FHIR R4 Bundle (resourceType 'Bundle') holding the Patient, the Encounter and the Observations to score", at: path)
        }
        try add(bundle: b, path: path)
        try requirePatient(path)
    }

    /// Adds a Bundle's entries (CDS Hooks prefetch search results too).
    package mutating func add(bundle b: [String: JSONValue], path: String) throws {
        guard let entries = b["entry"] else { return }
        guard case .array(let list) = entries else { throw FHIRFailure(400, code: "invalid", "entry must be an array", at: "\(path).entry") }
        guard list.count <= 100_000 else { throw FHIRFailure(413, code: "too-costly", "\(list.count) entries: more than 100000 in one request", at: "\(path).entry") }
        for (k, e) in list.enumerated() {
            let at = "\(path).entry[\(k)]"
            guard case .object(let entry) = e, case .object(let r)? = entry["resource"] else {
                issues.append(.init(code: "invalid", diagnostics: "an entry must carry a resource object", expression: at))
                continue
            }
            var fullUrl: String?
            if case .string(let u)? = entry["fullUrl"], !u.isEmpty { fullUrl = u }
            add(resource: r, fullUrl: fullUrl, path: "\(at).resource")
        }
    }

    /// Adds one resource (its reference: `fullUrl` when given, else `Type/id`).
    package mutating func add(resource r: [String: JSONValue], fullUrl: String? = nil, path: String) {
        guard case .string(let type)? = r["resourceType"] else {
            issues.append(.init(code: "invalid", diagnostics: "a resource must carry resourceType", expression: path))
            return
        }
        var reference = fullUrl
        if reference == nil, case .string(let id)? = r["id"], !id.isEmpty { reference = "\(type)/\(id)" }
        let res = Resource(json: r, reference: reference, path: "\(path)")
        switch type {
        case "Patient":
            if patient != nil { issues.append(.init(code: "invalid", diagnostics: "a second Patient: a score is for one patient", expression: path)) }
            patient = res
        case "Encounter":
            if encounter != nil { issues.append(.init(code: "invalid", diagnostics: "a second Encounter: send the one encounter (ICU stay) the score is for", expression: path)) }
            encounter = res
        case "Observation": observations.append(res)
        case "Condition": conditions.append(res)
        default: others += 1
        }
    }

    func requirePatient(_ path: String) throws {
        var issues = self.issues
        if patient == nil { issues.append(.init(code: "required", diagnostics: "no Patient resource: a score needs the patient it is for", expression: path)) }
        if !issues.isEmpty { throw FHIRFailure(issues.contains { $0.code == "invalid" } && patient == nil ? 400 : 422, issues) }
    }
}

/// A FHIR request mapped to a model's pipeline: the observation history, the scoring instant,
/// the resources used (the RiskAssessment's `basis`) and what was left out.
package struct FHIRMapping: Sendable {
    package var history: ObservationHistory
    package var instant: Double
    package var basis: [String]
    package var notes: [String]
    package var subject: String?
    package var encounterReference: String?

    /// Maps `input` through `model`'s pipeline bindings; `at` (an instant) overrides the scoring
    /// time (default: the latest Observation used, else the Encounter's start). Every problem is
    /// collected and thrown together as one 422.
    package init(_ input: FHIRInput, model: VigilModel, at: Double? = nil) throws {
        guard let p = model.pipeline, p.inputs.contains(where: { $0.fhir != nil }) else {
            throw FHIRFailure(422, code: "not-supported", "model '\(model.name)' declares no FHIR bindings (manifest pipeline inputs with 'fhir'); score it with /v1/models/\(model.name)/score")
        }
        var issues = input.issues
        var notes: [String] = []
        let unitSeconds = UCUMUnit(p.timeUnit)!.factor
        // The time origin: the Encounter's period.start.
        var origin: Double?
        if let e = input.encounter {
            if case .object(let period)? = e.json["period"], case .string(let s)? = period["start"] {
                origin = FHIRTime.instant(s)
                if origin == nil { issues.append(.init(code: "value", diagnostics: "period.start '\(Untrusted.quote(s, limit: 40))' is not a FHIR dateTime with time of day and zone", expression: "\(e.path).period.start")) }
            } else {
                issues.append(.init(code: "required", diagnostics: "the Encounter has no period.start: the pipeline's time axis (\(p.timeField), \(p.timeUnit)) counts from it", expression: "\(e.path).period.start"))
            }
        } else {
            issues.append(.init(code: "required", diagnostics: "no Encounter resource: the pipeline's time axis (\(p.timeField), \(p.timeUnit)) counts from the Encounter's period.start (the admission the score is for)", expression: "Bundle.entry"))
        }
        func axis(_ instant: Double) -> Double {
            let elapsed = (instant - (origin ?? 0)) / unitSeconds
            return p.originValue + (p.step.map { (elapsed / $0).rounded(.down) * $0 } ?? elapsed)
        }
        let entity: String = {
            if case .string(let id)? = input.encounter?.json["id"], !id.isEmpty { return id }
            if case .string(let id)? = input.patient?.json["id"], !id.isEmpty { return id }
            return "fhir"
        }()
        var h = EntityHistory(pipeline: p, entity: entity)

        // Observations, matched by coding (and components' codings).
        var byCode: [String: Int] = [:]
        for (i, inp) in p.inputs.enumerated() {
            if case .observation(let system, let code)? = inp.fhir { byCode["\(system)|\(code)"] = i }
        }
        var used: [(Double, String?)] = []
        var ignored = 0, early = 0, unusable = 0
        for o in input.observations {
            if case .string(let status)? = o.json["status"], !["final", "amended", "corrected", "preliminary"].contains(status) { ignored += 1; continue }
            var parts: [(json: [String: JSONValue], path: String)] = [(o.json, o.path)]
            if case .array(let comps)? = o.json["component"] {
                for (k, c) in comps.enumerated() { if case .object(let cj) = c { parts.append((cj, "\(o.path).component[\(k)]")) } }
            }
            var matched = false
            for part in parts {
                guard let i = Self.codings(part.json).lazy.compactMap({ byCode[$0] }).first else { continue }
                matched = true
                guard let t = Self.effective(o.json) else {
                    issues.append(.init(code: "required", diagnostics: "an Observation for input '\(p.inputs[i].name)' has no effectiveDateTime, effectiveInstant, effectivePeriod.start or issued with time of day and zone", expression: "\(o.path).effective[x]"))
                    continue
                }
                // The value: a quantity converted to the input's unit, or an integer for a unitless input.
                var v: Double
                if case .object(let q)? = part.json["valueQuantity"] {
                    guard case .number(let value)? = q["value"], value.isFinite else {
                        issues.append(.init(code: "value", diagnostics: "valueQuantity.value must be a number", expression: "\(part.path).valueQuantity.value"))
                        continue
                    }
                    v = value
                    if let target = p.inputs[i].unit {
                        guard let unit = Self.unit(of: q) else {
                            issues.append(.init(code: "required", diagnostics: "valueQuantity for input '\(p.inputs[i].name)' has no unit (code or unit); its unit is \(target)", expression: "\(part.path).valueQuantity"))
                            continue
                        }
                        guard let c = UCUMUnit.convert(v, from: unit, to: target) else {
                            issues.append(.init(code: "value", diagnostics: "unit '\(Untrusted.quote(unit, limit: 40))' cannot be converted to '\(target)' for input '\(p.inputs[i].name)' (UCUM units of one dimension convert)", expression: "\(part.path).valueQuantity.code"))
                            continue
                        }
                        v = c
                    }
                } else if case .number(let value)? = part.json["valueInteger"], p.inputs[i].unit == nil {
                    v = value
                } else {
                    unusable += 1  // no value (dataAbsentReason, a coded value): not a measurement
                    continue
                }
                guard let origin, t >= origin else { early += 1; continue }
                if let at, t > at { ignored += 1; continue }
                h.observe(i, time: axis(t), value: v)
                used.append((t, o.reference))
            }
            if !matched { ignored += 1 }
        }
        let instant = at ?? used.map(\.0).max() ?? origin ?? 0

        // Statics: Patient gender and age, extensions.
        for (i, inp) in p.inputs.enumerated() where inp.kind == .static {
            guard let source = inp.fhir else { continue }
            switch source {
            case .patientGender(let map):
                if case .string(let g)? = input.patient?.json["gender"] {
                    if let v = map[g] { h.statics[i] = v } else { notes.append("Patient.gender '\(Untrusted.quote(g, limit: 20))' is not one of \(map.keys.sorted().joined(separator: ", ")): \(inp.name) is missing") }
                }
            case .patientAge(let cap):
                if case .string(let b)? = input.patient?.json["birthDate"] {
                    if let day = FHIRTime.day(b) {
                        var years = Double(FHIRTime.age(birth: day, at: instant))
                        if let cap, years >= cap.at { years = cap.value }
                        h.statics[i] = years
                    } else {
                        issues.append(.init(code: "value", diagnostics: "birthDate '\(Untrusted.quote(b, limit: 20))' must be a full date (YYYY-MM-DD) to give \(inp.name) in whole years", expression: "\(input.patient!.path).birthDate"))
                    }
                }
            case .extension(let resource, let url):
                let r = resource == "Patient" ? input.patient : input.encounter
                if let r, case .array(let exts)? = r.json["extension"] {
                    for case .object(let x) in exts {
                        guard case .string(url)? = x["url"] else { continue }
                        if case .number(let v)? = x["valueDecimal"] ?? x["valueInteger"] { h.statics[i] = v }
                        if case .bool(let b)? = x["valueBoolean"] { h.statics[i] = b ? 1 : 0 }
                        if case .object(let q)? = x["valueQuantity"], case .number(let v)? = q["value"] {
                            if let target = inp.unit, let unit = Self.unit(of: q) {
                                if let c = UCUMUnit.convert(v, from: unit, to: target) { h.statics[i] = c } else {
                                    issues.append(.init(code: "value", diagnostics: "unit '\(Untrusted.quote(unit, limit: 40))' cannot be converted to '\(target)' for \(inp.name)", expression: "\(r.path).extension('\(url)')"))
                                }
                            } else { h.statics[i] = v }
                        }
                    }
                }
            case .condition(let system, let code):
                let present = input.conditions.contains { c in
                    guard Self.codings(c.json).contains("\(system)|\(code)") else { return false }
                    for (key, excluded) in [("clinicalStatus", ["inactive", "resolved", "remission"]), ("verificationStatus", ["refuted", "entered-in-error"])] {
                        if case .object(let cc)? = c.json[key], case .array(let list)? = cc["coding"] {
                            for case .object(let k) in list { if case .string(let v)? = k["code"], excluded.contains(v) { return false } }
                        }
                    }
                    return true
                }
                h.statics[i] = present ? 1 : 0
            case .observation: break
            }
        }
        // Group fields from FHIR (Patient.gender, an extension such as US Core race).
        var groupRaw = Array(repeating: String?.none, count: model.fieldGroups.count)
        for src in p.groupSources {
            guard let slot = model.fieldGroups.firstIndex(where: { $0.field == src.field }) else { continue }
            var raw: String?
            switch src.element {
            case .patientGender:
                if case .string(let g)? = input.patient?.json["gender"] { raw = g }
            case .extension(let resource, let url):
                let r = resource == "Patient" ? input.patient : input.encounter
                if let r, case .array(let exts)? = r.json["extension"] {
                    for case .object(let x) in exts { if case .string(url)? = x["url"] { raw = Self.groupValue(x) } }
                }
            }
            groupRaw[slot] = raw.map { src.map?[$0] ?? $0 }
        }
        // A static the model needs (its feature refuses missing values) must be there.
        for (j, op) in p.operations.enumerated() {
            guard case .value(let i) = op, h.statics[i].isNaN, !model.schema.features[j].missingAllowed else { continue }
            let source: String
            switch p.inputs[i].fhir {
            case .patientGender?: source = "Patient.gender"
            case .patientAge?: source = "Patient.birthDate"
            case .extension(let r, let url)?: source = "\(r).extension('\(url)')"
            default: source = "(no FHIR source declared)"
            }
            issues.append(.init(code: "required", diagnostics: "\(source) is required: it gives \(p.inputs[i].name), which model '\(model.name)' needs (missing values are not allowed for feature '\(model.schema.names[j])')", expression: source))
        }
        if !issues.isEmpty { throw FHIRFailure(422, issues) }
        if ignored > 0 { notes.append("\(ignored) Observation\(ignored == 1 ? "" : "s") not used (codes the model does not read, not final, or after the scoring time)") }
        if early > 0 { notes.append("\(early) Observation\(early == 1 ? "" : "s") before the Encounter's start not used (the model was trained on values from the admission on)") }
        if unusable > 0 { notes.append("\(unusable) Observation\(unusable == 1 ? "" : "s") without a quantity (data absent) taken as not measured") }
        h.settle()
        h.start = p.originValue
        let t = origin == nil ? p.originValue : max(p.originValue, axis(instant))
        h.saw(t)
        history = ObservationHistory(history: h, at: t, id: nil, groupRaw: groupRaw)
        self.instant = instant
        self.notes = notes
        var seen = Set<String>()
        basis = ([input.patient?.reference, input.encounter?.reference] + used.map(\.1)).compactMap { $0 }.filter { seen.insert($0).inserted }
        subject = input.patient?.reference
        encounterReference = input.encounter?.reference
    }

    /// An extension's group value: valueCode, valueString, valueCoding's code, or (US Core
    /// race/ethnicity) the first `ombCategory` Coding's code, else its `text`.
    static func groupValue(_ x: [String: JSONValue]) -> String? {
        if case .string(let s)? = x["valueCode"] ?? x["valueString"] { return s }
        if case .object(let c)? = x["valueCoding"], case .string(let code)? = c["code"] { return code }
        guard case .array(let subs)? = x["extension"] else { return nil }
        var text: String?
        for case .object(let sub) in subs {
            if case .string("ombCategory")? = sub["url"], case .object(let c)? = sub["valueCoding"], case .string(let code)? = c["code"] { return code }
            if case .string("text")? = sub["url"], case .string(let t)? = sub["valueString"] { text = t }
        }
        return text
    }

    /// A Quantity's unit: its UCUM `code`, else its `unit` text.
    static func unit(of q: [String: JSONValue]) -> String? {
        if case .string(let c)? = q["code"] { return c }
        if case .string(let u)? = q["unit"] { return u }
        return nil
    }

    /// `system|code` of each coding in `code.coding`.
    static func codings(_ r: [String: JSONValue]) -> [String] {
        guard case .object(let code)? = r["code"], case .array(let list)? = code["coding"] else { return [] }
        return list.compactMap { c in
            guard case .object(let o) = c, case .string(let s)? = o["system"], case .string(let k)? = o["code"] else { return nil }
            return "\(s)|\(k)"
        }
    }

    /// When an Observation was made, as an instant: effectiveDateTime, effectiveInstant,
    /// effectivePeriod.start, else issued.
    static func effective(_ r: [String: JSONValue]) -> Double? {
        if case .string(let s)? = r["effectiveDateTime"] ?? r["effectiveInstant"] { return FHIRTime.instant(s) }
        if case .object(let period)? = r["effectivePeriod"], case .string(let s)? = period["start"] { return FHIRTime.instant(s) }
        if case .string(let s)? = r["issued"] { return FHIRTime.instant(s) }
        return nil
    }
}
