package import Foundation

/// A declared feature pipeline (manifest `pipeline`, docs/FORMATS.md "Feature pipelines"): how
/// each model feature is derived from raw, time-stamped observations of one entity (an ICU stay,
/// an encounter). One engine (`features(_:at:into:)`) runs the declaration for `vigil score
/// --events` on a raw event table and for `vigil serve` on a request carrying an observation
/// history (native `history` records, FHIR Bundles, CDS Hooks prefetch), so every path computes
/// the features the training script computed, cell for cell.
///
/// Times are numbers on one axis in the declared unit (`time.unit`, e.g. hours since ICU
/// admission). At scoring time `t` an entity's history holds, per observation input, the values
/// observed at times `<= t` (later ones are not seen):
/// - `last`: the value of the latest observation at or before `t` (last observation carried
///   forward within the entity); missing if none;
/// - `change` over `window` W: `last(t) - last(t - W)`; missing when `t - W` is before the
///   entity's first time (`start`) or either value is missing;
/// - `time_since`: `t` minus the time of the latest observation at or before `t` (0 when observed
///   at `t`); missing if none;
/// - `count`, `min`, `max`, `mean` over `window` W: the observations with time in `(t - W, t]`
///   (all times `<= t` without a window); count 0 and the others missing when there are none;
/// - `static`: a value given once per entity (age, sex, an admission offset);
/// - `time`: `t` itself.
/// Values are converted to the input's declared UCUM unit when they arrive in another one
/// (`UCUMUnit`); a unit that cannot be converted is refused, never guessed.
package struct FeaturePipeline: Sendable {
    package enum InputKind: String, Sendable { case observation, `static` }

    /// Where an input comes from in FHIR R4 (POST /fhir/{model}/$score, CDS Hooks prefetch).
    package enum FHIRSource: Sendable, Equatable {
        /// An Observation whose `code` carries this coding, its `valueQuantity` converted to the
        /// input's unit; `effectiveDateTime` (or `effectivePeriod.start`, `issued`) places it in time.
        case observation(system: String, code: String)
        /// Patient.gender mapped to numbers (`{"female": 0, "male": 1}`).
        case patientGender([String: Double])
        /// Patient.birthDate, as whole years at the scoring time; `cap` replaces ages at or above
        /// `cap.at` by `cap.value` (PhysioNet writes 100 for 90+).
        case patientAge(cap: (at: Double, value: Double)?)
        /// An extension on the Patient or the Encounter: `valueDecimal`, `valueInteger`,
        /// `valueQuantity` (converted) or `valueBoolean` (1/0).
        case `extension`(resource: String, url: String)
        /// 1 when the Bundle holds a Condition with this coding that is not refuted, entered in
        /// error, inactive or resolved; else 0.
        case condition(system: String, code: String)

        package static func == (a: FHIRSource, b: FHIRSource) -> Bool {
            switch (a, b) {
            case let (.observation(s1, c1), .observation(s2, c2)): return s1 == s2 && c1 == c2
            case let (.patientGender(m1), .patientGender(m2)): return m1 == m2
            case let (.patientAge(x), .patientAge(y)): return x?.at == y?.at && x?.value == y?.value
            case let (.extension(r1, u1), .extension(r2, u2)): return r1 == r2 && u1 == u2
            case let (.condition(s1, c1), .condition(s2, c2)): return s1 == s2 && c1 == c2
            default: return false
            }
        }
    }

    /// Where a `field`-sourced group's raw value comes from in FHIR: Patient.gender, or an
    /// extension (a code, string or Coding, or a US Core race/ethnicity-style extension whose
    /// `ombCategory` Coding or `text` gives it), through `map` (FHIR code -> the raw text the
    /// manifest's group map reads) when given.
    package struct FHIRGroupSource: Sendable, Equatable {
        package enum Element: Sendable, Equatable { case patientGender, `extension`(resource: String, url: String) }
        package let field: String
        package let element: Element
        package let map: [String: String]?
    }

    package struct Input: Sendable {
        package let name: String
        package let kind: InputKind
        /// The declared UCUM unit values are kept in (nil: dimensionless, no conversion).
        package let unit: String?
        package let fhir: FHIRSource?
        package let description: String?
    }

    package enum Operation: Sendable, Equatable {
        case last(Int)
        case change(Int, window: Double)
        case timeSince(Int)
        case count(Int, window: Double?)
        case minimum(Int, window: Double?)
        case maximum(Int, window: Double?)
        case mean(Int, window: Double?)
        case value(Int)
        case time

        package var input: Int? {
            switch self {
            case .last(let i), .change(let i, _), .timeSince(let i), .count(let i, _), .minimum(let i, _), .maximum(let i, _), .mean(let i, _), .value(let i): return i
            case .time: return nil
            }
        }
    }

    /// The raw table's column naming the entity (`vigil score --events`).
    package let entityField: String
    /// The raw table's time column, and the axis' UCUM unit (h, min, s, d).
    package let timeField: String
    package let timeUnit: String
    /// FHIR: the Encounter element whose time is `time.origin_value` on the axis (the time of an
    /// Observation is `origin_value + elapsed`, in `timeUnit`, rounded down to `time.step`).
    package let originValue: Double
    package let step: Double?
    /// The record id of a scored time, `{entity}` and `{time}` replaced (default `{entity}:{time}`).
    package let recordID: String
    package let inputs: [Input]
    /// One per model feature, in the model's feature order.
    package let operations: [Operation]
    /// FHIR sources of the manifest's `field`-sourced groups (by field).
    package let groupSources: [FHIRGroupSource]

    package func input(named name: String) -> Int? { inputs.firstIndex { $0.name == name } }

    /// The record id of `entity` scored at `time`.
    package func recordID(entity: String, time: Double) -> String {
        recordID.replacingOccurrences(of: "{entity}", with: entity).replacingOccurrences(of: "{time}", with: MissingValues.canonicalText(time))
    }

    // MARK: - Reading the declaration

    /// Reads `pipeline` for a model whose features are `schema`, strictly: every model feature
    /// derived exactly once, every input named once and used, windows positive and finite.
    package init(_ node: JSONNode, schema: FeatureSchema, groupFields: [String] = []) throws {
        try node.requireKeys(in: ["entity", "time", "record_id", "inputs", "features", "description", "groups"])
        entityField = try node["entity"].string()
        let time = try node["time"]
        try time.requireKeys(in: ["field", "unit", "origin_value", "step"])
        timeField = try time["field"].string()
        timeUnit = try time["unit"].string()
        guard let axis = UCUMUnit(timeUnit), axis.dimension == .time else {
            throw try time["unit"].fail("'\(Untrusted.quote(timeUnit))' is not a UCUM time unit (s, min, h, d)")
        }
        originValue = try time.optional("origin_value")?.double() ?? 0
        guard originValue.isFinite, abs(originValue) <= 1e9 else { throw try time["origin_value"].fail("must be a finite number within +-1e9") }
        step = try time.optional("step").map { n in
            let s = try n.double()
            guard s > 0, s.isFinite, s <= 1e9 else { throw n.fail("must be a positive number (the axis' resolution, e.g. 1 for whole hours)") }
            return s
        }
        recordID = try node.optional("record_id")?.string() ?? "{entity}:{time}"
        guard recordID.contains("{entity}"), recordID.utf8.count <= 200 else {
            throw try node["record_id"].fail("must contain {entity} (and usually {time}), at most 200 bytes")
        }
        guard entityField != timeField else { throw try node["entity"].fail("the entity and time columns must differ") }

        var inputs: [Input] = []
        for n in try node["inputs"].array() {
            try n.requireKeys(in: ["name", "kind", "unit", "fhir", "description"])
            let name = try n["name"].string()
            guard !name.isEmpty, name.utf8.count <= 200 else { throw try n["name"].fail("must be 1-200 bytes") }
            guard !inputs.contains(where: { $0.name == name }) else { throw try n["name"].fail("input '\(Untrusted.quote(name))' appears twice") }
            guard name != entityField, name != timeField else { throw try n["name"].fail("'\(Untrusted.quote(name))' is the entity or time column") }
            let kindText = try n["kind"].string()
            guard let kind = InputKind(rawValue: kindText) else { throw try n["kind"].fail("'\(Untrusted.quote(kindText))' is not an input kind (observation, static)") }
            let unit = try n.optional("unit").flatMap { $0.isNull ? nil : try $0.string() }
            if let unit, UCUMUnit(unit) == nil {
                throw try n["unit"].fail("'\(Untrusted.quote(unit))' is not a UCUM unit Vigil converts (\(UCUMUnit.known))")
            }
            let fhir = try n.optional("fhir").map { try Self.fhirSource($0, unit: unit) }
            if let fhir {
                let isObservation: Bool = { if case .observation = fhir { return true } else { return false } }()
                guard isObservation == (kind == .observation) else {
                    throw try n["fhir"].fail(kind == .observation ? "an observation input reads a FHIR Observation" : "a static input reads the Patient, the Encounter or a Condition, not an Observation")
                }
            }
            inputs.append(Input(name: name, kind: kind, unit: unit, fhir: fhir, description: try n.optional("description")?.string()))
        }
        guard !inputs.isEmpty else { throw try node["inputs"].fail("a pipeline needs at least one input") }
        self.inputs = inputs

        let features = try node["features"]
        guard case .object = features.value else { throw features.fail("expected an object: model feature name -> derivation") }
        for key in features.keys where schema.index(of: key) == nil {
            throw try features[key].fail("'\(Untrusted.quote(key))' is not a feature of the model")
        }
        var ops: [Operation] = []
        for name in schema.names {
            guard let d = features.optional(name) else { throw features.fail("model feature '\(Untrusted.quote(name))' has no derivation; every feature needs one") }
            ops.append(try Self.operation(d, inputs: inputs))
        }
        operations = ops
        for (i, input) in inputs.enumerated() where !ops.contains(where: { $0.input == i }) {
            throw try node["inputs"].fail("input '\(Untrusted.quote(input.name))' is not used by any feature")
        }
        var sources: [FHIRGroupSource] = []
        for g in try node.optional("groups")?.array() ?? [] {
            try g.requireKeys(in: ["field", "fhir"])
            let field = try g["field"].string()
            guard groupFields.contains(field) else {
                throw try g["field"].fail("'\(Untrusted.quote(field))' is not the field of a manifest group with source 'field' (\(groupFields.joined(separator: ", ")))")
            }
            guard !sources.contains(where: { $0.field == field }) else { throw try g["field"].fail("'\(Untrusted.quote(field))' appears twice") }
            let f = try g["fhir"]
            try f.requireKeys(in: ["patient", "extension", "resource", "map"])
            let element: FHIRGroupSource.Element
            if let p = f.optional("patient") {
                guard try p.string() == "gender", f.optional("extension") == nil else { throw p.fail("a group reads patient 'gender' or an extension") }
                element = .patientGender
            } else {
                let resource = try f.optional("resource")?.string() ?? "Patient"
                guard ["Patient", "Encounter"].contains(resource) else { throw try f["resource"].fail("must be Patient or Encounter") }
                element = .extension(resource: resource, url: try f["extension"].string())
            }
            let map = try f.optional("map").map { m in try Dictionary(uniqueKeysWithValues: m.keys.map { ($0, try m[$0].string()) }) }
            sources.append(FHIRGroupSource(field: field, element: element, map: map))
        }
        groupSources = sources
    }

    private static func operation(_ d: JSONNode, inputs: [Input]) throws -> Operation {
        try d.requireKeys(in: ["op", "input", "window"])
        let op = try d["op"].string()
        if op == "time" {
            guard d.optional("input") == nil, d.optional("window") == nil else { throw d.fail("op 'time' takes no input or window") }
            return .time
        }
        let name = try d["input"].string()
        guard let i = inputs.firstIndex(where: { $0.name == name }) else {
            throw try d["input"].fail("'\(Untrusted.quote(name))' is not a declared input (\(inputs.prefix(8).map(\.name).joined(separator: ", ")))")
        }
        let window: Double? = try d.optional("window").map { n in
            let w = try n.double()
            guard w > 0, w.isFinite, w <= 1e9 else { throw n.fail("must be a positive number of time units, at most 1e9") }
            return w
        }
        let kind = inputs[i].kind
        func needs(_ k: InputKind) throws {
            guard kind == k else { throw d.fail("op '\(op)' needs \(k == .static ? "a static" : "an observation") input; '\(Untrusted.quote(name))' is \(kind.rawValue)") }
        }
        switch op {
        case "static":
            try needs(.static)
            guard window == nil else { throw d.fail("op 'static' takes no window") }
            return .value(i)
        case "last":
            try needs(.observation)
            guard window == nil else { throw d.fail("op 'last' takes no window (the value is carried forward for the whole entity)") }
            return .last(i)
        case "time_since":
            try needs(.observation)
            guard window == nil else { throw d.fail("op 'time_since' takes no window") }
            return .timeSince(i)
        case "change":
            try needs(.observation)
            guard let window else { throw d.fail("op 'change' needs a window") }
            return .change(i, window: window)
        case "count": try needs(.observation); return .count(i, window: window)
        case "min": try needs(.observation); return .minimum(i, window: window)
        case "max": try needs(.observation); return .maximum(i, window: window)
        case "mean": try needs(.observation); return .mean(i, window: window)
        default:
            throw try d["op"].fail("'\(Untrusted.quote(op))' is not an operation (last, change, time_since, count, min, max, mean, static, time)")
        }
    }

    private static func fhirSource(_ n: JSONNode, unit: String?) throws -> FHIRSource {
        try n.requireKeys(in: ["observation", "patient", "extension", "condition", "resource", "map", "cap"])
        let given = ["observation", "patient", "extension", "condition"].filter { n.optional($0) != nil }
        guard given.count == 1 else { throw n.fail("give exactly one of observation, patient, extension, condition") }
        if let c = n.optional("condition") {
            try c.requireKeys(in: ["system", "code"])
            let system = try c["system"].string(), code = try c["code"].string()
            guard !system.isEmpty, !code.isEmpty else { throw c.fail("system and code must be non-empty") }
            return .condition(system: system, code: code)
        }
        if let o = n.optional("observation") {
            try o.requireKeys(in: ["system", "code"])
            let system = try o["system"].string(), code = try o["code"].string()
            guard !system.isEmpty, !code.isEmpty else { throw o.fail("system and code must be non-empty") }
            return .observation(system: system, code: code)
        }
        if let p = n.optional("patient") {
            let element = try p.string()
            switch element {
            case "gender":
                guard let m = n.optional("map") else { throw n.fail("patient gender needs a map (FHIR code -> number), e.g. {\"female\": 0, \"male\": 1}") }
                var map: [String: Double] = [:]
                for k in m.keys {
                    let v = try m[k].double()
                    guard v.isFinite else { throw try m[k].fail("must be a finite number") }
                    map[k] = v
                }
                return .patientGender(map)
            case "age":
                var cap: (Double, Double)?
                if let c = n.optional("cap") {
                    try c.requireKeys(in: ["at", "value"])
                    cap = (try c["at"].double(), try c["value"].double())
                }
                return .patientAge(cap: cap)
            default:
                throw p.fail("'\(Untrusted.quote(element))' is not a Patient element Vigil reads (gender, age)")
            }
        }
        let url = try n["extension"].string()
        let resource = try n.optional("resource")?.string() ?? "Patient"
        guard ["Patient", "Encounter"].contains(resource) else { throw try n["resource"].fail("'\(Untrusted.quote(resource))' must be Patient or Encounter") }
        return .extension(resource: resource, url: url)
    }
}

/// One entity's observations, per pipeline input, kept sorted by time (equal times in arrival
/// order: the later one is the latest), and its static values.
package struct EntityHistory: Sendable {
    package var entity: String
    /// The entity's first time on the axis (a `change` window may not reach before it); nil =
    /// the earliest time seen.
    package var start: Double?
    package private(set) var times: [[Double]]
    package private(set) var values: [[Double]]
    package var statics: [Double]
    package private(set) var earliest = Double.infinity

    package init(pipeline: FeaturePipeline, entity: String) {
        self.entity = entity
        times = Array(repeating: [], count: pipeline.inputs.count)
        values = Array(repeating: [], count: pipeline.inputs.count)
        statics = Array(repeating: .nan, count: pipeline.inputs.count)
    }

    /// Whether an observation arrived earlier in time than one before it (`settle()` sorts).
    package private(set) var unsorted = false

    /// Records `value` of observation input `input` at `time` (a NaN value is no observation, but
    /// its time still counts as one of the entity's times). Observations may arrive in any order:
    /// call `settle()` once they are all in (appending and one sort, never an insertion per
    /// observation, so a request in reverse time order costs n log n, not n²).
    package mutating func observe(_ input: Int, time: Double, value: Double) {
        earliest = min(earliest, time)
        guard !value.isNaN else { return }
        if let last = times[input].last, time < last { unsorted = true }
        times[input].append(time)
        values[input].append(value)
    }

    /// Puts each input's observations in time order, equal times in arrival order (the later
    /// one is the latest).
    package mutating func settle() {
        guard unsorted else { return }
        for i in times.indices where times[i].count > 1 {
            let order = times[i].indices.sorted { (times[i][$0], $0) < (times[i][$1], $1) }
            times[i] = order.map { times[i][$0] }
            values[i] = order.map { values[i][$0] }
        }
        unsorted = false
    }

    /// Notes a time the entity was seen at (a row with nothing measured).
    package mutating func saw(_ time: Double) { earliest = min(earliest, time) }

    /// The number of times `<= t` in `a` (sorted).
    static func upperBound(_ a: [Double], _ t: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The latest observation of `input` at or before `t`.
    func latest(_ input: Int, _ t: Double) -> (time: Double, value: Double)? {
        let k = Self.upperBound(times[input], t)
        return k == 0 ? nil : (times[input][k - 1], values[input][k - 1])
    }

    /// The index range of the observations of `input` in `(t - window, t]` (all `<= t` without one).
    func window(_ input: Int, _ t: Double, _ w: Double?) -> Range<Int> {
        let hi = Self.upperBound(times[input], t)
        let lo = w.map { Self.upperBound(times[input], t - $0) } ?? 0
        return lo..<max(lo, hi)
    }
}

extension FeaturePipeline {
    /// The model's features for `history` scored at time `t`, written to `out` (model order).
    package func features(_ history: EntityHistory, at t: Double, into out: UnsafeMutablePointer<Double>) {
        var h = history
        if h.unsorted { h.settle() }  // callers settle once; this keeps a forgotten one correct
        let start = h.start ?? h.earliest
        for (j, op) in operations.enumerated() {
            let v: Double
            switch op {
            case .time: v = t
            case .value(let i): v = h.statics[i]
            case .last(let i): v = h.latest(i, t)?.value ?? .nan
            case .timeSince(let i): v = h.latest(i, t).map { t - $0.time } ?? .nan
            case .change(let i, let w):
                if t - w < start { v = .nan } else if let now = h.latest(i, t), let then = h.latest(i, t - w) { v = now.value - then.value } else { v = .nan }
            case .count(let i, let w): v = Double(h.window(i, t, w).count)
            case .minimum(let i, let w):
                let r = h.window(i, t, w)
                v = r.isEmpty ? .nan : h.values[i][r].min()!
            case .maximum(let i, let w):
                let r = h.window(i, t, w)
                v = r.isEmpty ? .nan : h.values[i][r].max()!
            case .mean(let i, let w):
                let r = h.window(i, t, w)
                v = r.isEmpty ? .nan : h.values[i][r].reduce(0, +) / Double(r.count)
            }
            out[j] = v
        }
    }

    /// `features(_:at:into:)` into a new array.
    package func features(_ h: EntityHistory, at t: Double) -> [Double] {
        var out = [Double](repeating: .nan, count: operations.count)
        out.withUnsafeMutableBufferPointer { features(h, at: t, into: $0.baseAddress!) }
        return out
    }
}
