internal import Foundation
internal import VigilEngine
internal import VigilJSON

/// The Open Inference Protocol's binary tensor data extension (KServe v2 / Triton), which the
/// stock `tritonclient` HTTP client uses by default: a request whose
/// `Inference-Header-Content-Length: N` header says its first N bytes are the JSON inference
/// request, followed by the binary data of every input that carries
/// `"parameters": {"binary_data_size": S}`, in input order; and a response that carries outputs
/// asked for with `"parameters": {"binary_data": true}` (or every output, with the request's
/// `"binary_data_output": true`) as binary data after its JSON, the same way.
///
/// Binary data is little-endian, row-major, without padding; BOOL is one byte (0 or 1); BYTES is
/// each element's 4-byte little-endian length followed by its bytes. A NaN is a missing value
/// (as `null` is in JSON data); an infinity is refused. Every size is checked
/// before it is used: the header length against the body, each `binary_data_size` against what
/// is left and against the tensor's shape and datatype, each BYTES length against what is left.
enum BinaryTensors {
    static let headerName = "Inference-Header-Content-Length"

    /// Splits a body by the header's length: the JSON part and the binary part.
    static func split(_ body: Data, headerLength text: String) throws -> (json: Data, binary: Data) {
        guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 0 else {
            throw ServerError.badRequest("header \(headerName): '\(Untrusted.quote(text))' is not a byte count")
        }
        guard n <= body.count else {
            throw ServerError.badRequest("header \(headerName): \(n) bytes of JSON, but the body has \(body.count)")
        }
        return (body.prefix(n), body.dropFirst(n))
    }

    /// The inputs with the binary data of those that name a `binary_data_size` put in `data` (as
    /// JSON values, so that the one request parser checks shapes, types and values).
    static func inline(_ inputs: [JSONValue], binary: Data) throws -> [JSONValue] {
        var offset = binary.startIndex
        var out: [JSONValue] = []
        out.reserveCapacity(inputs.count)
        for (i, input) in inputs.enumerated() {
            guard case .object(var o) = input, case .object(let params)? = o["parameters"], let sizeValue = params["binary_data_size"] else {
                out.append(input)
                continue
            }
            let place = "inputs[\(i)]"
            let bytes = try take(sizeValue, of: o, place: place, binary: binary, offset: &offset)
            guard case .string(let datatype)? = o["datatype"] else { throw ServerError.badRequest("\(place).datatype: must be a string") }
            o["data"] = .array(try decode(bytes, datatype: datatype, place: place))
            var p = params
            p.removeValue(forKey: "binary_data_size")
            o["parameters"] = .object(p)
            out.append(.object(o))
        }
        guard offset == binary.endIndex else {
            throw ServerError.badRequest("body: \(binary.endIndex - offset) binary bytes after the last tensor's; binary_data_size must account for every byte")
        }
        return out
    }

    /// An input's binary part: `binary_data_size` bytes from `offset` (advanced past them), the
    /// size checked as a byte count, against the bytes left, and against a `data` given as well.
    static func take(_ sizeValue: JSONValue, of o: [String: JSONValue], place: String, binary: Data, offset: inout Data.Index) throws -> Data {
        guard case .number(let d) = sizeValue, let size = Untrusted.integer(d, in: 0...Int(Int32.max)) else {
            throw ServerError.badRequest("\(place).parameters.binary_data_size: must be a byte count")
        }
        guard o["data"] == nil else { throw ServerError.badRequest("\(place): both data and binary_data_size; send the tensor one way") }
        guard binary.endIndex - offset >= size else {
            throw ServerError.badRequest("\(place).parameters.binary_data_size: \(size) bytes, but only \(binary.endIndex - offset) binary bytes are left in the body")
        }
        defer { offset += size }
        return binary[offset..<(offset + size)]
    }

    static func width(_ datatype: String) -> Int? {
        switch datatype {
        case "BOOL", "INT8", "UINT8": return 1
        case "INT16", "UINT16", "FP16": return 2
        case "INT32", "UINT32", "FP32": return 4
        case "INT64", "UINT64", "FP64": return 8
        default: return nil
        }
    }

    /// The elements of a binary BYTES tensor: each a 4-byte little-endian length, then that many
    /// bytes; every length checked against the bytes left.
    static func elements(_ bytes: Data, place: String) throws -> [Data] {
        let b = [UInt8](bytes)
        var out: [Data] = []
        var i = 0
        while i < b.count {
            guard b.count - i >= 4 else { throw ServerError.badRequest("\(place): a BYTES element's 4-byte length is cut off at byte \(i)") }
            let n = Int(UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            i += 4
            guard b.count - i >= n else { throw ServerError.badRequest("\(place): a BYTES element of \(n) bytes at byte \(i), but \(b.count - i) are left") }
            out.append(Data(b[i..<(i + n)]))
            i += n
        }
        return out
    }

    static func decode(_ bytes: Data, datatype: String, place: String) throws -> [JSONValue] {
        if datatype == "BYTES" {
            return try elements(bytes, place: place).map { e in
                guard let s = String(data: e, encoding: .utf8) else { throw ServerError.badRequest("\(place): a BYTES element is not UTF-8 text") }
                return .string(s)
            }
        }
        let b = [UInt8](bytes)
        guard let w = width(datatype) else { throw ServerError.badRequest("\(place).datatype: '\(Untrusted.quote(datatype))' is not an OIP datatype") }
        guard datatype != "FP16" else { throw ServerError.badRequest("\(place).datatype: FP16 is not accepted; send FP32 or FP64") }
        guard b.count % w == 0 else { throw ServerError.badRequest("\(place).parameters.binary_data_size: \(b.count) bytes is not a whole number of \(datatype) elements (\(w) bytes each)") }
        var out: [JSONValue] = []
        out.reserveCapacity(b.count / w)
        for k in stride(from: 0, to: b.count, by: w) {
            var u: UInt64 = 0
            for j in 0..<w { u |= UInt64(b[k + j]) << (8 * UInt64(j)) }
            let v: Double
            switch datatype {
            case "BOOL":
                guard u <= 1 else { throw ServerError.badRequest("\(place): a BOOL element is \(u); BOOL is one byte, 0 or 1") }
                out.append(.bool(u == 1))
                continue
            case "INT8": v = Double(Int8(truncatingIfNeeded: u))
            case "UINT8", "UINT16", "UINT32", "UINT64": v = Double(u)
            case "INT16": v = Double(Int16(truncatingIfNeeded: u))
            case "INT32": v = Double(Int32(truncatingIfNeeded: u))
            case "INT64": v = Double(Int64(bitPattern: u))
            case "FP32": v = Double(Float(bitPattern: UInt32(truncatingIfNeeded: u)))
            default: v = Double(bitPattern: u)
            }
            // NaN is how binary data says missing (JSON says null); an infinity has no JSON
            // number, so it goes on as a string, which the parser refuses by name.
            out.append(v.isFinite ? .number(v) : v.isNaN ? .null : .string(v > 0 ? "Infinity" : "-Infinity"))
        }
        return out
    }

    /// One output's binary data (FP64, BOOL or BYTES: what Vigil's outputs are).
    static func encode(_ values: Values) -> Data {
        var d = Data()
        switch values {
        case .fp64(let xs):
            d.reserveCapacity(xs.count * 8)
            for x in xs { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        case .bool(let xs):
            d.append(contentsOf: xs.map { $0 ? 1 : 0 })
        case .bytes(let xs):
            for s in xs {
                let u = Array(s.utf8)
                withUnsafeBytes(of: UInt32(u.count).littleEndian) { d.append(contentsOf: $0) }
                d.append(contentsOf: u)
            }
        }
        return d
    }

    enum Values {
        case fp64([Double])
        case bool([Bool])
        case bytes([String])

        var json: String {
            switch self {
            case .fp64(let xs): return xs.map(JSON.number).joined(separator: ",")
            case .bool(let xs): return xs.map { "\($0)" }.joined(separator: ",")
            case .bytes(let xs): return xs.map(JSON.string).joined(separator: ",")
            }
        }
    }
}
