package import Foundation
package import VigilEngine
package import VigilJSON

/// Turns request bodies into `RowBatch`es for one model, strictly: every model feature must be
/// given (null for a missing value), values must be numbers, unknown keys are refused.
/// Errors name the record, the field, the value and the rule.
package struct RequestParser: Sendable {
    package let model: VigilModel
    /// Keys a native record may carry besides the features: the id field(s) and the raw
    /// fields of `field`-sourced groups.
    let extraKeys: Set<String>

    package init(model: VigilModel) {
        self.model = model
        extraKeys = Set(["id", model.idField] + model.fieldGroups.map(\.field))
    }

    package static func parseJSON(_ data: Data) throws -> JSONValue {
        do {
            // Python's json (and so tritonclient) writes a missing float as the bare token `NaN`:
            // read as `null` (a missing value).
            return try JSONValue.parse(data, nanAsNull: true)
        } catch {
            throw ServerError.badRequest("body: not valid JSON (\(error))")
        }
    }

    // MARK: - Native records

    /// `{"id": ..., "<feature>": value, "<group field>": "..."}` or an array of such objects.
    package func nativeRows(_ body: JSONValue, maxRows: Int) throws -> RowBatch {
        // A model with a feature pipeline also takes observation histories (HistoryRequest.swift).
        if carriesHistory(body) { return try historyRows(body, maxRows: maxRows) }
        // An image model takes images (ImageRequest.swift).
        if model.imageInput != nil { return try ImageRequest(model).native(body, explain: false) }
        let objects: [[String: JSONValue]]
        switch body {
        case .object(let o): objects = [o]
        case .array(let a):
            guard !a.isEmpty else { throw ServerError.badRequest("body: an empty array; send one record or an array of records") }
            guard a.count <= maxRows else { throw ServerError(413, "body: \(a.count) records, more than the limit of \(maxRows) per request") }
            objects = try a.enumerated().map { i, v in
                guard case .object(let o) = v else { throw ServerError.badRequest("record \(i): must be a JSON object of feature values") }
                return o
            }
        default:
            throw ServerError.badRequest("body: must be a JSON object (one record) or an array of objects")
        }
        let f = model.schema.count, g = model.fieldGroups.count
        var batch = RowBatch(
            count: objects.count, ids: [], features: [Double](repeating: .nan, count: objects.count * f),
            groupRaw: [String?](repeating: nil, count: objects.count * g), origins: [])
        for (r, o) in objects.enumerated() {
            let place = objects.count == 1 && !isArray(body) ? "record" : "record \(r)"
            for key in o.keys where model.schema.index(of: key) == nil && !extraKeys.contains(key) {
                throw ServerError.badRequest("\(place), field '\(Untrusted.quote(key))': is not a feature of model '\(model.name)' nor its id or a group field (\(extraKeys.sorted().joined(separator: ", "))); unknown fields are refused")
            }
            for (j, name) in model.schema.names.enumerated() {
                guard let v = o[name] else {
                    throw ServerError.badRequest("\(place), field '\(name)': is not given; every model feature needs a key (null for a missing value)")
                }
                batch.features[r * f + j] = try Self.number(v, place: place, field: name)
            }
            for (slot, group) in model.fieldGroups.enumerated() {
                batch.groupRaw[r * g + slot] = try Self.text(o[group.field], place: place, field: group.field)
            }
            let id = try Self.text(o[model.idField] ?? o["id"], place: place, field: model.idField) ?? ""
            batch.ids.append(id)
            batch.origins.append(place)
        }
        return batch
    }

    private func isArray(_ v: JSONValue) -> Bool {
        if case .array = v { return true }
        return false
    }

    /// A feature value, read by `RowNumber` as the cohort reader reads it: a number, null
    /// (missing), a boolean (1/0), or a string holding a decimal number or a missing token
    /// (`""`, `NaN`, `NA`, `?`); `inf`, `1e999`, hexadecimal and other text are refused.
    static func number(_ v: JSONValue, place: String, field: String) throws -> Double {
        switch RowNumber.read(v) {
        case .value(let d): return d
        case .refused(let rule):
            let shown: String
            switch v {
            case .string(let s): shown = "value '\(Untrusted.quote(s))'"
            case .array, .object: shown = "value"
            default: shown = "value \(Untrusted.quote("\(v)"))"
            }
            throw ServerError.badRequest("\(place), field '\(Untrusted.quote(field))': \(shown) \(rule)")
        }
    }

    /// A group field's raw text, or the id: a string, a number (written canonically), a boolean;
    /// nil when absent, null or empty.
    static func text(_ v: JSONValue?, place: String, field: String) throws -> String? {
        switch v {
        case nil, .null?: return nil
        case .string(let s)?: return s.isEmpty ? nil : s
        case .number(let d)?: return MissingValues.canonicalText(d)
        case .bool(let b)?: return b ? "true" : "false"
        case .array?, .object?:
            throw ServerError.badRequest("\(place), field '\(Untrusted.quote(field))': value is a JSON \(kind(v!)), not a string")
        }
    }

    static func kind(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    // MARK: - Open Inference Protocol

    /// The most elements one request's tensor may hold: `maxRows` rows of every feature (a
    /// tensor of features is [N, F], a per-feature or group tensor [N] or [N, 1]).
    static func maxTensorElements(maxRows: Int, features: Int) -> Int {
        let (p, overflow) = max(maxRows, 1).multipliedReportingOverflow(by: max(features, 1))
        return overflow ? Int.max : p
    }

    /// The features of an OIP request: either one FP32/FP64 tensor `[N, F]` (any name that is
    /// not a feature's) in manifest order, or one tensor per feature (`[N]` or `[N, 1]`, named
    /// by the feature); plus BYTES tensors named by a group's input field (or the group's name),
    /// and optionally a BYTES tensor of ids named by the id field or `id`.
    ///
    /// Checked before any use: every shape entry is an integer size, the shape's product is
    /// computed with overflow reported and bounded by `maxRows` x features elements (413 beyond),
    /// `data` is flat with that many values or nested exactly as the shape (no ragged, deeper or
    /// shallower arrays), no input name appears twice, and every tensor has the same N.
    package func inferRows(_ inputs: [JSONValue], maxRows: Int) throws -> RowBatch {
        guard !inputs.isEmpty else { throw ServerError.badRequest("inputs: empty; send one FP32/FP64 tensor [N, \(model.schema.count)] or one tensor per feature") }
        struct Tensor { let name: String; let shape: [Int]; let datatype: String; let data: [JSONValue]; let index: Int }
        let f = model.schema.count
        let maxElements = Self.maxTensorElements(maxRows: maxRows, features: f)
        var tensors: [Tensor] = []
        var seen: [String: Int] = [:]
        for (i, t) in inputs.enumerated() {
            guard case .object(let o) = t else { throw ServerError.badRequest("inputs[\(i)]: must be an object with name, shape, datatype, data") }
            for key in o.keys where !["name", "shape", "datatype", "data", "parameters"].contains(key) {
                throw ServerError.badRequest("inputs[\(i)].\(Untrusted.quote(key)): unknown key (name, shape, datatype, data, parameters)")
            }
            guard case .string(let name)? = o["name"] else { throw ServerError.badRequest("inputs[\(i)].name: must be a string") }
            let shown = Untrusted.quote(name)
            if let first = seen[name] {
                throw ServerError.badRequest("inputs[\(i)] '\(shown)': the input name is given twice (inputs[\(first)] and inputs[\(i)]); each input appears once")
            }
            seen[name] = i
            guard case .array(let shapeValues)? = o["shape"], !shapeValues.isEmpty else {
                throw ServerError.badRequest("inputs[\(i)] '\(shown)'.shape: must be a non-empty array of sizes")
            }
            guard shapeValues.count <= 8 else {
                throw ServerError.badRequest("inputs[\(i)] '\(shown)'.shape: \(shapeValues.count) dimensions; a tensor here has at most 8 (features are [N, F], [N] or [N, 1])")
            }
            let shape = try shapeValues.enumerated().map { k, v -> Int in
                guard case .number(let d) = v, let size = Untrusted.integer(d, in: 0...Int.max) else {
                    throw ServerError.badRequest("inputs[\(i)] '\(shown)'.shape[\(k)]: \(Untrusted.quote(Self.describe(v))) is not a size (a non-negative integer)")
                }
                return size
            }
            let expected: Int
            do {
                expected = try Untrusted.product(shape, limit: maxElements, place: "inputs[\(i)] '\(shown)'.shape")
            } catch {
                throw ServerError(413, "inputs[\(i)] '\(shown)'.shape: \(shape) holds more than the limit of \(maxElements) elements (\(max(maxRows, 1)) rows per request x \(max(f, 1)) features); send fewer rows per request")
            }
            guard case .string(let dt)? = o["datatype"] else { throw ServerError.badRequest("inputs[\(i)] '\(shown)'.datatype: must be a string") }
            if let p = o["parameters"] { guard case .object = p else { throw ServerError.badRequest("inputs[\(i)] '\(shown)'.parameters: must be an object") } }
            guard case .array(let nested)? = o["data"] else { throw ServerError.badRequest("inputs[\(i)] '\(shown)'.data: must be an array") }
            let flat = try Self.flatten(nested, shape: shape, count: expected, tensor: "inputs[\(i)] '\(shown)'")
            tensors.append(Tensor(name: name, shape: shape, datatype: dt, data: flat, index: i))
        }
        let featureTensors = tensors.filter { model.schema.index(of: $0.name) != nil }
        let groupTensors = tensors.filter { t in model.fieldGroups.contains { $0.field == t.name || $0.name == t.name } }
        let idTensor = tensors.first { ($0.name == model.idField || $0.name == "id") && model.schema.index(of: $0.name) == nil }
        if let t = idTensor, let other = tensors.first(where: { ($0.name == model.idField || $0.name == "id") && $0.index != t.index && model.schema.index(of: $0.name) == nil }) {
            throw ServerError.badRequest("inputs '\(Untrusted.quote(other.name))': a second id tensor (besides '\(Untrusted.quote(t.name))'); give the ids once")
        }
        var groupSlotTensor: [Int: String] = [:]
        for t in groupTensors {
            let slot = model.fieldGroups.firstIndex { $0.field == t.name || $0.name == t.name }!
            if let prev = groupSlotTensor[slot] {
                throw ServerError.badRequest("inputs '\(Untrusted.quote(t.name))': group '\(model.fieldGroups[slot].name)' is already given by tensor '\(Untrusted.quote(prev))'; give each group once")
            }
            groupSlotTensor[slot] = t.name
        }
        let others = tensors.filter { t in
            model.schema.index(of: t.name) == nil && !groupTensors.contains { $0.index == t.index } && t.index != idTensor?.index
        }
        let n: Int
        var features: [Double]
        if featureTensors.isEmpty {
            guard others.count == 1, let m = others.first else {
                throw ServerError.badRequest("inputs: expected one FP32/FP64 tensor [N, \(f)] of features in manifest order, or one tensor per feature; got \(others.prefix(10).map { "'\(Untrusted.quote($0.name))'" }.joined(separator: ", "))")
            }
            guard m.shape.count == 2, m.shape[1] == f else {
                throw ServerError.badRequest("inputs '\(Untrusted.quote(m.name))'.shape: \(m.shape) but model '\(model.name)' takes [N, \(f)] (features: \(model.schema.names.joined(separator: ", ")))")
            }
            n = m.shape[0]
            guard n <= maxRows else { throw ServerError(413, "inputs: \(n) rows, more than the limit of \(maxRows) per request") }
            features = try Self.floats(m.data, datatype: m.datatype, tensor: m.name, columns: model.schema.names)
        } else {
            if let stray = others.first {
                throw ServerError.badRequest("inputs '\(Untrusted.quote(stray.name))': is neither a feature of model '\(model.name)', a group field nor the id; with one tensor per feature, every tensor is named by its feature")
            }
            guard featureTensors.count == f else {
                let given = Set(featureTensors.map(\.name))
                let missing = model.schema.names.filter { !given.contains($0) }
                throw ServerError.badRequest("inputs: missing feature tensor(s) \(missing.prefix(10).map { "'\($0)'" }.joined(separator: ", ")); with one tensor per feature, all \(f) are needed")
            }
            n = featureTensors[0].shape[0]
            guard n <= maxRows else { throw ServerError(413, "inputs: \(n) rows, more than the limit of \(maxRows) per request") }
            features = [Double](repeating: .nan, count: n * f)
            for t in featureTensors {
                guard t.shape == [n] || t.shape == [n, 1] else {
                    throw ServerError.badRequest("inputs '\(t.name)'.shape: \(t.shape) but a feature tensor is [N] or [N, 1] with the same N (\(n)) as '\(featureTensors[0].name)'")
                }
                let j = model.schema.index(of: t.name)!
                let col = try Self.floats(t.data, datatype: t.datatype, tensor: t.name, columns: [t.name])
                for r in 0..<n { features[r * f + j] = col[r] }
            }
        }
        guard n > 0 else { throw ServerError.badRequest("inputs: N = 0 rows") }
        let g = model.fieldGroups.count
        var groupRaw = [String?](repeating: nil, count: n * g)
        for t in groupTensors {
            guard t.datatype == "BYTES" else { throw ServerError.badRequest("inputs '\(Untrusted.quote(t.name))'.datatype: \(Untrusted.quote(t.datatype)) but a group field is BYTES") }
            guard t.shape == [n] || t.shape == [n, 1] else { throw ServerError.badRequest("inputs '\(Untrusted.quote(t.name))'.shape: \(t.shape) but a group tensor is [N] or [N, 1] with N = \(n)") }
            let slot = model.fieldGroups.firstIndex { $0.field == t.name || $0.name == t.name }!
            for r in 0..<n { groupRaw[r * g + slot] = try Self.text(t.data[r], place: "inputs '\(Untrusted.quote(t.name))'[\(r)]", field: t.name) }
        }
        var ids = (0..<n).map { String($0) }
        if let t = idTensor {
            guard t.datatype == "BYTES" else { throw ServerError.badRequest("inputs '\(Untrusted.quote(t.name))'.datatype: \(Untrusted.quote(t.datatype)) but the id tensor is BYTES") }
            guard t.shape == [n] || t.shape == [n, 1] else { throw ServerError.badRequest("inputs '\(Untrusted.quote(t.name))'.shape: \(t.shape) but the id tensor is [N] or [N, 1] with N = \(n)") }
            for r in 0..<n { ids[r] = try Self.text(t.data[r], place: "inputs '\(Untrusted.quote(t.name))'[\(r)]", field: t.name) ?? ids[r] }
        }
        return RowBatch(count: n, ids: ids, features: features, groupRaw: groupRaw, origins: (0..<n).map { "row \($0)" })
    }

    /// A JSON value for an error (its kind for arrays and objects).
    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .array, .object, .string: return "a JSON \(kind(v))"
        case .number(let d): return "\(d)"
        default: return kind(v)
        }
    }

    /// `data` as `count` values in row-major order: either flat (no element is an array) with
    /// exactly `count` values, or nested exactly as `shape` (every array at depth k holds
    /// shape[k] items, the innermost hold values). Ragged, deeper or shallower nesting is
    /// refused naming the index path.
    static func flatten(_ data: [JSONValue], shape: [Int], count: Int, tensor: String) throws -> [JSONValue] {
        let nested = data.contains { if case .array = $0 { return true } else { return false } }
        guard nested else {
            guard data.count == count else {
                throw ServerError.badRequest("\(tensor): shape \(shape) holds \(count) values but data has \(data.count)")
            }
            return data
        }
        var out: [JSONValue] = []
        out.reserveCapacity(count)
        func walk(_ a: [JSONValue], depth: Int, path: String) throws {
            guard depth < shape.count else {
                throw ServerError.badRequest("\(tensor).data\(path): nested deeper than the shape \(shape) (\(shape.count) levels)")
            }
            guard a.count == shape[depth] else {
                throw ServerError.badRequest("\(tensor).data\(path): \(a.count) items where the shape \(shape) has \(shape[depth]) at level \(depth + 1); nested data follows the shape exactly")
            }
            let last = depth == shape.count - 1
            for (k, v) in a.enumerated() {
                if case .array(let inner) = v {
                    guard !last else {
                        throw ServerError.badRequest("\(tensor).data\(path)[\(k)]: nested deeper than the shape \(shape) (\(shape.count) levels)")
                    }
                    try walk(inner, depth: depth + 1, path: path + "[\(k)]")
                } else {
                    guard last else {
                        throw ServerError.badRequest("\(tensor).data\(path)[\(k)]: a value where the shape \(shape) needs an array at level \(depth + 2); nested data follows the shape exactly")
                    }
                    out.append(v)
                }
            }
        }
        try walk(data, depth: 0, path: "")
        return out
    }

    /// FP32 values are rounded to Float first, as the client's tensor holds them.
    static func floats(_ data: [JSONValue], datatype: String, tensor: String, columns: [String]) throws -> [Double] {
        guard datatype == "FP32" || datatype == "FP64" else {
            throw ServerError.badRequest("inputs '\(Untrusted.quote(tensor))'.datatype: \(Untrusted.quote(datatype)) but features are FP32 or FP64")
        }
        let fp32 = datatype == "FP32"
        return try data.enumerated().map { i, v in
            let d: Double
            switch v {
            case .number(let x): d = x
            case .null: d = .nan
            default:
                throw ServerError.badRequest("inputs '\(Untrusted.quote(tensor))'.data[\(i)] (feature '\(columns[i % columns.count])'): value is a JSON \(kind(v)), not a number")
            }
            guard fp32, !d.isNaN else { return d }
            let x = Float(d)
            guard x.isFinite else {
                throw ServerError.badRequest("inputs '\(Untrusted.quote(tensor))'.data[\(i)] (feature '\(columns[i % columns.count])'): value \(d) is beyond the FP32 range (±3.4e38); send FP64 or a finite FP32 value")
            }
            return Double(x)
        }
    }
}
