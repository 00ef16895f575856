package import Foundation
package import VigilEngine
package import VigilJSON

/// A patient's observation history, the input of a model whose manifest declares a feature
/// pipeline (docs/SERVER.md, "Observation histories"): the server derives the features as
/// `vigil score --events` and the training script do, so a caller never recomputes them.
///
///     {"history": {"entity": "p1", "start": 1, "at": 12,
///                  "static": {"Age": 61, "Gender": 1, "HospAdmTime": -3.5},
///                  "observations": [{"input": "HR", "time": 3, "value": 88, "unit": "/min"}, ...]},
///      "<group field>": "...", "<id field>": "..."}
///
/// `at` (default: the latest observation's time, else `start`) is the scoring time; `start`
/// (default: the earliest time given) is the entity's first time on the axis, before which a
/// `change` window may not reach. A value in another unit than the input's is converted (UCUM),
/// or refused when it cannot be. Strict: unknown keys, unknown inputs, a static given as an
/// observation, times or values that are not finite numbers are refused naming the place.
package struct ObservationHistory: Sendable {
    package var history: EntityHistory
    package var at: Double
    package var id: String?
    package var groupRaw: [String?]

    /// The most observations one request may carry, over all its records.
    package static let maxObservations = 200_000
}

extension RequestParser {
    /// Whether `body` (a record or an array of records) carries observation histories.
    func carriesHistory(_ body: JSONValue) -> Bool {
        guard model.pipeline != nil else { return false }
        switch body {
        case .object(let o): return o["history"] != nil
        case .array(let a): if case .object(let o)? = a.first { return o["history"] != nil } else { return false }
        default: return false
        }
    }

    /// The records' histories, scored at their `at` times, as one batch.
    func historyRows(_ body: JSONValue, maxRows: Int) throws -> RowBatch {
        guard let pipeline = model.pipeline else { throw ServerError.badRequest("history: model '\(model.name)' declares no feature pipeline") }
        let records: [(String, [String: JSONValue])]
        switch body {
        case .object(let o): records = [("record", o)]
        case .array(let a):
            guard a.count <= maxRows else { throw ServerError(413, "body: \(a.count) records, more than the limit of \(maxRows) per request") }
            records = try a.enumerated().map { i, v in
                guard case .object(let o) = v else { throw ServerError.badRequest("record \(i): must be a JSON object with 'history'") }
                return ("record \(i)", o)
            }
        default: throw ServerError.badRequest("body: must be a JSON object (one record) or an array of objects")
        }
        var budget = ObservationHistory.maxObservations
        let histories = try records.map { place, o in
            for key in o.keys where key != "history" && !extraKeys.contains(key) {
                throw ServerError.badRequest("\(place), field '\(Untrusted.quote(key))': unknown; a history record carries 'history', the id and the group fields (\(extraKeys.sorted().joined(separator: ", ")))")
            }
            var h = try Self.history(o["history"] ?? .null, pipeline: pipeline, place: "\(place).history", budget: &budget)
            h.id = try Self.text(o[model.idField] ?? o["id"], place: place, field: model.idField)
            h.groupRaw = try model.fieldGroups.map { try Self.text(o[$0.field], place: place, field: $0.field) }
            return h
        }
        return batch(histories)
    }

    /// Histories as a batch: each one's features at its `at`, its id (given, else the pipeline's
    /// record id) and group fields.
    package func batch(_ histories: [ObservationHistory]) -> RowBatch {
        let f = model.schema.count, g = model.fieldGroups.count
        var batch = RowBatch(count: histories.count, ids: [], features: [Double](repeating: .nan, count: histories.count * f),
                             groupRaw: [String?](repeating: nil, count: histories.count * g), origins: [])
        let pipeline = model.pipeline!
        batch.features.withUnsafeMutableBufferPointer { fp in
            for (r, h) in histories.enumerated() { pipeline.features(h.history, at: h.at, into: fp.baseAddress! + r * f) }
        }
        for (r, h) in histories.enumerated() {
            batch.ids.append(h.id ?? pipeline.recordID(entity: h.history.entity, time: h.at))
            batch.origins.append(histories.count == 1 ? "record" : "record \(r)")
            for slot in 0..<g where slot < h.groupRaw.count { batch.groupRaw[r * g + slot] = h.groupRaw[slot] }
        }
        return batch
    }

    /// One `history` object, read strictly.
    static func history(_ v: JSONValue, pipeline: FeaturePipeline, place: String, budget: inout Int) throws -> ObservationHistory {
        guard case .object(let o) = v else { throw ServerError.badRequest("\(place): required, an object with entity, observations (and static, start, at)") }
        for key in o.keys where !["entity", "start", "at", "static", "observations"].contains(key) {
            throw ServerError.badRequest("\(place).\(Untrusted.quote(key)): unknown key (entity, start, at, static, observations)")
        }
        guard case .string(let entity)? = o["entity"], !entity.isEmpty, entity.utf8.count <= 256 else {
            throw ServerError.badRequest("\(place).entity: required, a string of 1-256 bytes naming the entity (the \(pipeline.entityField))")
        }
        var h = EntityHistory(pipeline: pipeline, entity: entity)
        func time(_ v: JSONValue?, _ at: String) throws -> Double? {
            guard let v, v != .null else { return nil }
            guard case .number(let t) = v, t.isFinite, abs(t) <= 1e12 else {
                throw ServerError.badRequest("\(at): value \(Untrusted.quote("\(v)", limit: 40)) must be a number within +-1e12 (a time on the pipeline's axis, in \(pipeline.timeUnit))")
            }
            return t
        }
        if case .object(let s)? = o["static"] {
            for (name, value) in s {
                guard let i = pipeline.input(named: name), pipeline.inputs[i].kind == .static else {
                    throw ServerError.badRequest("\(place).static.\(Untrusted.quote(name)): not a static input of the pipeline (\(pipeline.inputs.filter { $0.kind == .static }.map(\.name).joined(separator: ", ")))")
                }
                h.statics[i] = try number(value, place: "\(place).static", field: name)
            }
        } else if let s = o["static"], s != .null {
            throw ServerError.badRequest("\(place).static: must be an object of static input -> number")
        }
        var latest = -Double.infinity
        if let obs = o["observations"], obs != .null {
            guard case .array(let list) = obs else { throw ServerError.badRequest("\(place).observations: must be an array of {input, time, value, unit?}") }
            budget -= list.count
            guard budget >= 0 else { throw ServerError(413, "\(place).observations: more than \(ObservationHistory.maxObservations) observations in one request") }
            for (k, item) in list.enumerated() {
                let at = "\(place).observations[\(k)]"
                guard case .object(let e) = item else { throw ServerError.badRequest("\(at): must be an object {input, time, value, unit?}") }
                for key in e.keys where !["input", "time", "value", "unit"].contains(key) {
                    throw ServerError.badRequest("\(at).\(Untrusted.quote(key)): unknown key (input, time, value, unit)")
                }
                guard case .string(let name)? = e["input"], let i = pipeline.input(named: name), pipeline.inputs[i].kind == .observation else {
                    throw ServerError.badRequest("\(at).input: must name an observation input of the pipeline (\(pipeline.inputs.filter { $0.kind == .observation }.prefix(10).map(\.name).joined(separator: ", "))\(pipeline.inputs.count > 10 ? ", ..." : ""))")
                }
                guard let t = try time(e["time"], "\(at).time") else { throw ServerError.badRequest("\(at).time: required") }
                var value = try number(e["value"] ?? .null, place: at, field: "value")
                if case .string(let unit)? = e["unit"] {
                    value = try convert(value, from: unit, input: pipeline.inputs[i], place: "\(at).unit")
                } else if let u = e["unit"], u != .null {
                    throw ServerError.badRequest("\(at).unit: must be a UCUM unit string")
                }
                h.observe(i, time: t, value: value)
                latest = max(latest, t)
            }
        }
        h.settle()
        h.start = try time(o["start"], "\(place).start")
        if let start = h.start { h.saw(start) }
        guard let at = try time(o["at"], "\(place).at") ?? (latest.isFinite ? latest : h.start) else {
            throw ServerError.badRequest("\(place): no observations and no 'at' or 'start': nothing says when to score")
        }
        if let start = h.start, at < start {
            throw ServerError.badRequest("\(place).at: \(MissingValues.canonicalText(at)) is before start \(MissingValues.canonicalText(start))")
        }
        h.saw(at)
        return ObservationHistory(history: h, at: at, id: nil, groupRaw: [])
    }

    /// `value` in `unit` as the input's declared unit.
    static func convert(_ value: Double, from unit: String, input: FeaturePipeline.Input, place: String) throws -> Double {
        guard let target = input.unit, unit != target else { return value }
        guard let v = UCUMUnit.convert(value, from: unit, to: target) else {
            throw ServerError.badRequest("\(place): '\(Untrusted.quote(unit, limit: 40))' cannot be converted to \(input.name)'s unit '\(target)' (UCUM units of the same dimension convert; a mass and an amount of substance do not)")
        }
        return v
    }
}
