import Foundation
internal import ONNXProto
internal import VigilCore

/// An ONNX initializer decoded to `Double`, whatever its storage (`raw_data` little-endian or the
/// typed `float_data` / `double_data` / `int64_data` fields). External data is refused.
struct ONNXTensor {
    let name: String
    let dims: [Int]
    let values: [Double]
    /// The element type as written (FLOAT = 1, DOUBLE = 11, ...).
    let elementType: Int32

    var count: Int { values.count }

    init(_ proto: Onnx_TensorProto, file: String) throws {
        name = proto.name
        dims = proto.dims.map(Int.init)
        elementType = proto.dataType
        let place = "initializer '\(proto.name)'"
        if proto.dataLocation == .external || !proto.externalData.isEmpty {
            throw VigilError.modelFormat(file, at: place, "external-data tensors are not supported; save the model with its weights inside")
        }
        guard dims.allSatisfy({ $0 >= 0 }) else {
            throw VigilError.modelFormat(file, at: place, "negative dimension in \(dims)")
        }
        // Checked as it multiplies: a crafted shape must not overflow.
        var expected = 1
        for d in dims {
            let (product, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 31 else {
                throw VigilError.modelFormat(file, at: place, "shape \(dims) has more than 2^31 values")
            }
            expected = product
        }
        let raw = proto.rawData
        switch proto.dataType {
        case 1:  // FLOAT
            if !raw.isEmpty {
                guard raw.count == expected * 4 else {
                    throw VigilError.modelFormat(file, at: place, "raw_data has \(raw.count) bytes; shape \(dims) of float needs \(expected * 4)")
                }
                values = raw.withUnsafeBytes { buf in
                    (0..<expected).map { Double(Float(bitPattern: UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))) }
                }
            } else {
                values = proto.floatData.map(Double.init)
            }
        case 11:  // DOUBLE
            if !raw.isEmpty {
                guard raw.count == expected * 8 else {
                    throw VigilError.modelFormat(file, at: place, "raw_data has \(raw.count) bytes; shape \(dims) of double needs \(expected * 8)")
                }
                values = raw.withUnsafeBytes { buf in
                    (0..<expected).map { Double(bitPattern: UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
                }
            } else {
                values = proto.doubleData
            }
        case 7:  // INT64
            if !raw.isEmpty {
                guard raw.count == expected * 8 else {
                    throw VigilError.modelFormat(file, at: place, "raw_data has \(raw.count) bytes; shape \(dims) of int64 needs \(expected * 8)")
                }
                values = raw.withUnsafeBytes { buf in
                    (0..<expected).map { Double(Int64(littleEndian: buf.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
                }
            } else {
                values = proto.int64Data.map(Double.init)
            }
        default:
            throw VigilError.modelFormat(file, at: place, "element type \(proto.dataType) is not supported (float, double, int64 are)")
        }
        guard values.count == expected else {
            throw VigilError.modelFormat(file, at: place, "\(values.count) values for shape \(dims) (\(expected) expected)")
        }
    }
}
