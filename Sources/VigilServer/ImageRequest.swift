package import Foundation
package import VigilEngine
package import VigilJSON

/// Requests for an image (CNN) model, read into a `RowBatch` whose rows hold each image's input
/// tensor, preprocessed exactly as `vigil score` preprocesses files (`ImageInputSpec.tensor`):
/// - native `POST /v1/models/{name}/score`: `{"<id field>": ..., "image": "<base64 PNG or JPEG>",
///   "<group field>": "..."}` or an array of such;
/// - OIP infer: one FP32 (or FP64) tensor `[N, C, H, W]` already preprocessed (the model's
///   input, as Triton and KServe take it), or one BYTES tensor `[N]` of PNG/JPEG files (binary, or
///   base64 strings in JSON), plus BYTES tensors of group fields and ids.
/// Each row's ledger input hash starts from the SHA-256 of the bytes it came in (the file, or the
/// tensor's little-endian float32 values). Sizes are checked before anything is allocated.
package struct ImageRequest {
    let model: VigilModel
    let spec: ImageInputSpec
    /// Images per request at most (their tensors are held in memory at once).
    static let maxImages = 256

    init(_ model: VigilModel) {
        self.model = model
        spec = model.imageInput!
    }

    // MARK: - Native

    func native(_ body: JSONValue, explain: Bool) throws -> RowBatch {
        let objects: [[String: JSONValue]]
        switch body {
        case .object(let o): objects = [o]
        case .array(let a):
            guard !a.isEmpty else { throw ServerError.badRequest("body: an empty array; send one image record or an array of them") }
            objects = try a.enumerated().map { i, v in
                guard case .object(let o) = v else { throw ServerError.badRequest("record \(i): must be a JSON object with 'image'") }
                return o
            }
        default: throw ServerError.badRequest("body: must be a JSON object {\"image\": \"<base64 PNG or JPEG>\", ...} or an array of them")
        }
        try checkCount(objects.count, explain: explain)
        let allowed = Set(["image", "id", model.idField] + model.fieldGroups.map(\.field))
        var files: [Data] = [], ids: [String] = [], groups: [String?] = [], places: [String] = []
        for (r, o) in objects.enumerated() {
            let place = objects.count == 1 ? "record" : "record \(r)"
            for key in o.keys where !allowed.contains(key) {
                throw ServerError.badRequest("\(place), field '\(Untrusted.quote(key))': unknown (image, \(model.idField), \(model.fieldGroups.map(\.field).joined(separator: ", ")))")
            }
            guard case .string(let b64)? = o["image"] else { throw ServerError.badRequest("\(place), field 'image': required, the PNG or JPEG file as base64") }
            guard let data = Data(base64Encoded: b64, options: .ignoreUnknownCharacters), !data.isEmpty else {
                throw ServerError.badRequest("\(place), field 'image': not base64 (RFC 4648) of a PNG or JPEG file")
            }
            files.append(data)
            ids.append(try RequestParser.text(o[model.idField] ?? o["id"], place: place, field: model.idField) ?? "")
            for g in model.fieldGroups { groups.append(try RequestParser.text(o[g.field], place: place, field: g.field)) }
            places.append(place)
        }
        return try decode(files, ids: ids, groups: groups, places: places)
    }

    // MARK: - Open Inference Protocol

    func infer(_ inputs: [JSONValue], binary: Data, explain: Bool) throws -> RowBatch {
        var offset = binary.startIndex
        var imageTensor: (n: Int, values: [Double], digests: [String])?
        var files: [Data]?
        var strings: [String: [String?]] = [:]
        for (i, t) in inputs.enumerated() {
            guard case .object(let o) = t else { throw ServerError.badRequest("inputs[\(i)]: must be an object with name, shape, datatype, data") }
            for key in o.keys where !["name", "shape", "datatype", "data", "parameters"].contains(key) {
                throw ServerError.badRequest("inputs[\(i)].\(Untrusted.quote(key)): unknown key (name, shape, datatype, data, parameters)")
            }
            guard case .string(let name)? = o["name"] else { throw ServerError.badRequest("inputs[\(i)].name: must be a string") }
            guard case .string(let datatype)? = o["datatype"] else { throw ServerError.badRequest("inputs[\(i)] '\(Untrusted.quote(name))'.datatype: must be a string") }
            guard case .array(let shapeValues)? = o["shape"], !shapeValues.isEmpty, shapeValues.count <= 8 else {
                throw ServerError.badRequest("inputs[\(i)] '\(Untrusted.quote(name))'.shape: must be an array of 1-8 sizes")
            }
            let shape = try shapeValues.enumerated().map { k, v -> Int in
                guard case .number(let d) = v, let s = Untrusted.integer(d, in: 0...(1 << 30)) else {
                    throw ServerError.badRequest("inputs[\(i)] '\(Untrusted.quote(name))'.shape[\(k)]: not a size (an integer 0...2^30)")
                }
                return s
            }
            let place = "inputs[\(i)] '\(Untrusted.quote(name))'"
            // The binary part of this input, when it has one (BinaryTensors' rules).
            var raw: Data?
            if let p = o["parameters"] { guard case .object = p else { throw ServerError.badRequest("\(place).parameters: must be an object") } }
            if case .object(let params)? = o["parameters"], let sizeValue = params["binary_data_size"] {
                raw = try BinaryTensors.take(sizeValue, of: o, place: place, binary: binary, offset: &offset)
            }
            if datatype == "FP32" || datatype == "FP64" {
                guard imageTensor == nil, files == nil else { throw ServerError.badRequest("\(place): a second image input; send the images as one tensor") }
                let want = [spec.channels, spec.height, spec.width]
                guard shape.count == 4, Array(shape.dropFirst()) == want else {
                    throw ServerError.badRequest("\(place).shape: \(shape) must be [N, \(want.map(String.init).joined(separator: ", "))] (NCHW, preprocessed as the manifest's input says)")
                }
                let n = shape[0]
                try checkCount(n, explain: explain)
                let count = try Untrusted.product([n, spec.count], limit: Self.maxImages * spec.count, place: place, what: "tensor values")
                var values: [Double]
                if let raw {
                    let w = datatype == "FP32" ? 4 : 8
                    guard raw.count == count * w else { throw ServerError.badRequest("\(place).parameters.binary_data_size: \(raw.count) bytes where \(count) \(datatype) values take \(count * w)") }
                    values = try BinaryTensors.decode(raw, datatype: datatype, place: place).enumerated().map { k, v in
                        guard case .number(let d) = v else { throw ServerError.badRequest("\(place): value \(k) is not a finite number (images have no missing pixels)") }
                        return d
                    }
                } else {
                    guard case .array(let data)? = o["data"] else { throw ServerError.badRequest("\(place).data: required (or parameters.binary_data_size)") }
                    values = []
                    values.reserveCapacity(count)
                    try Self.flatten(data, into: &values, limit: count, place: place)
                    guard values.count == count else { throw ServerError.badRequest("\(place).data: \(values.count) values where shape \(shape) holds \(count)") }
                }
                if datatype == "FP32" { values = values.map { Double(Float($0)) } }
                // Each image's digest: its float32 values, little-endian.
                let digests = (0..<n).map { r -> String in
                    var bytes = [UInt8]()
                    bytes.reserveCapacity(spec.count * 4)
                    for v in values[(r * spec.count)..<((r + 1) * spec.count)] { withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes += $0 } }
                    return SHA256Digest.hex(of: bytes)
                }
                imageTensor = (n, values, digests)
            } else if datatype == "BYTES" {
                guard shape.count == 1 || (shape.count == 2 && shape[1] == 1) else { throw ServerError.badRequest("\(place).shape: a BYTES tensor here is [N] or [N, 1]") }
                let n = shape[0]
                var elements: [Data] = []
                if let raw {
                    elements = try BinaryTensors.elements(raw, place: place)
                } else {
                    guard case .array(let data)? = o["data"] else { throw ServerError.badRequest("\(place).data: required (or parameters.binary_data_size)") }
                    let flat = data.flatMap { v -> [JSONValue] in if case .array(let a) = v { return a } else { return [v] } }
                    elements = try flat.map { v in
                        guard case .string(let s) = v else { throw ServerError.badRequest("\(place).data: BYTES elements are strings") }
                        return Data(s.utf8)
                    }
                }
                guard elements.count == n else { throw ServerError.badRequest("\(place): \(elements.count) elements where shape \(shape) holds \(n)") }
                if name == "image" || name == model.schema.names.first {
                    guard imageTensor == nil, files == nil else { throw ServerError.badRequest("\(place): a second image input; send the images as one tensor") }
                    try checkCount(n, explain: explain)
                    // Binary elements are the files; JSON elements are base64 text of them.
                    files = try elements.enumerated().map { k, e in
                        if raw != nil { return e }
                        guard let d = Data(base64Encoded: e, options: .ignoreUnknownCharacters), !d.isEmpty else {
                            throw ServerError.badRequest("\(place).data[\(k)]: not base64 of a PNG or JPEG file (JSON BYTES images are base64; binary ones are the file's bytes)")
                        }
                        return d
                    }
                } else {
                    strings[name] = try elements.enumerated().map { k, e in
                        guard let s = String(data: e, encoding: .utf8) else { throw ServerError.badRequest("\(place)[\(k)]: not UTF-8 text") }
                        return s.isEmpty ? nil : s
                    }
                }
            } else {
                throw ServerError.badRequest("\(place).datatype: '\(Untrusted.quote(datatype))' is not taken here: images are FP32 [N, C, H, W] (preprocessed) or BYTES [N] (PNG/JPEG files)")
            }
        }
        guard offset == binary.endIndex else {
            throw ServerError.badRequest("body: \(binary.endIndex - offset) binary bytes after the last tensor's; binary_data_size must account for every byte")
        }
        let n = imageTensor?.n ?? files?.count ?? 0
        guard imageTensor != nil || files != nil else {
            throw ServerError.badRequest("inputs: no image; send an FP32 tensor [N, \(spec.channels), \(spec.height), \(spec.width)] or a BYTES tensor 'image' [N] of PNG/JPEG files")
        }
        let known = Set(model.fieldGroups.map(\.field) + model.fieldGroups.map(\.name) + [model.idField, "id"])
        if let unknown = strings.keys.sorted().first(where: { !known.contains($0) }) {
            throw ServerError.badRequest("inputs '\(Untrusted.quote(unknown))': not the image, a group field (\(model.fieldGroups.map(\.field).joined(separator: ", "))) or the id field (\(model.idField))")
        }
        for (k, v) in strings where v.count != n { throw ServerError.badRequest("inputs '\(Untrusted.quote(k))': \(v.count) elements for \(n) images") }
        let ids = (0..<n).map { r in (strings[model.idField] ?? strings["id"])?[r] ?? "" }
        var groups: [String?] = []
        for r in 0..<n { for g in model.fieldGroups { groups.append((strings[g.field] ?? strings[g.name])?[r] ?? nil) } }
        let places = (0..<n).map { "image \($0)" }
        if let files { return try decode(files, ids: ids, groups: groups, places: places) }
        var batch = RowBatch(count: n, ids: ids, features: imageTensor!.values, groupRaw: groups, origins: places)
        batch.notes = Array(repeating: [], count: n)
        batch.inputDigests = imageTensor!.digests
        return batch
    }

    // MARK: - Helpers

    func checkCount(_ n: Int, explain: Bool) throws {
        guard n >= 1 else { throw ServerError.badRequest("no images in the request") }
        let limit = explain ? 16 : Self.maxImages
        guard n <= limit else { throw ServerError(413, "\(n) images in one request, more than the limit of \(limit)\(explain ? " with explain (integrated gradients)" : "")") }
    }

    /// Decodes and preprocesses files as `vigil score` does.
    func decode(_ files: [Data], ids: [String], groups: [String?], places: [String]) throws -> RowBatch {
        let n = files.count, size = spec.count
        var tensor = [Float](repeating: 0, count: n * size)
        var notes: [[String]] = []
        try tensor.withUnsafeMutableBufferPointer { tp in
            for (r, data) in files.enumerated() {
                do {
                    let image = try ImageDecoder.decode(data, name: places[r])
                    notes.append(try spec.tensor(from: image, name: places[r], into: tp.baseAddress! + r * size))
                } catch let e as VigilError {
                    throw ServerError.badRequest("\(places[r]), field 'image': \(e.message)")
                }
            }
        }
        var batch = RowBatch(count: n, ids: ids, features: tensor.map(Double.init), groupRaw: groups, origins: places)
        batch.notes = notes
        batch.inputDigests = files.map { SHA256Digest.hex(of: $0) }
        return batch
    }

    /// Nested JSON arrays of numbers, flattened row-major, stopping past `limit`.
    static func flatten(_ data: [JSONValue], into out: inout [Double], limit: Int, place: String) throws {
        for v in data {
            switch v {
            case .number(let d): out.append(d)
            case .array(let a): try flatten(a, into: &out, limit: limit, place: place)
            default: throw ServerError.badRequest("\(place).data: values must be finite numbers (images have no missing pixels)")
            }
            if out.count > limit { throw ServerError.badRequest("\(place).data: more values than the shape holds (\(limit))") }
        }
    }
}
