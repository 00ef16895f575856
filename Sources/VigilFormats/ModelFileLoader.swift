package import Foundation
package import VigilCore

/// The model file formats Vigil reads.
public enum ModelFormat: String, Sendable, Equatable, CaseIterable {
    case lightgbm
    case xgboost
    case onnx
    case linearJSON = "linear-json"

    public var displayName: String {
        switch self {
        case .lightgbm: return "LightGBM text"
        case .xgboost: return "XGBoost JSON"
        case .onnx: return "ONNX"
        case .linearJSON: return "Vigil linear JSON"
        }
    }
}

/// Recognises a model file by its content (not its name) and hands it to its loader.
package enum ModelFileLoader {
    /// Loads `data` read from a file called `fileName`. When `expected` is given (a manifest names
    /// the format), the content must be of that format.
    package static func load(data: Data, fileName: String, expected: ModelFormat? = nil) throws -> (ModelIR, ModelFormat) {
        let format = try expected ?? detect(data, fileName: fileName)
        switch format {
        case .lightgbm:
            guard let text = String(data: data, encoding: .utf8) else {
                throw VigilError.modelFormat(fileName, at: "byte 0", "a LightGBM text model must be UTF-8 text")
            }
            return (.trees(try LightGBMTextLoader(fileName: fileName).load(text: text)), .lightgbm)
        case .xgboost:
            return (.trees(try XGBoostJSONLoader(fileName: fileName).load(data: data)), .xgboost)
        case .linearJSON:
            return (.linear(try LinearJSONLoader(fileName: fileName).load(data: data)), .linearJSON)
        case .onnx:
            // A logistic graph goes to the linear loader (exact Double evaluation); anything it
            // does not read (Conv, Relu, ...) to the float32 graph loader.
            do {
                return (.linear(try ONNXLinearLoader(fileName: fileName).load(data: data)), .onnx)
            } catch let linearError as VigilError {
                do {
                    let (net, objective) = try ONNXGraphLoader(fileName: fileName).loadModel(data: data)
                    return (.convNet(net, objective), .onnx)
                } catch let graphError as VigilError {
                    throw ONNXGraphLoader.usesOnlyLinearOperators(data) ? linearError : graphError
                }
            }
        }
    }

    /// Which format `data` is: LightGBM text starts with the line `tree`; JSON is XGBoost when it
    /// has a `learner` object and Vigil linear JSON when `format` is `vigil-linear`; ONNX is a
    /// protobuf whose first field is `ir_version` (byte 0x08).
    package static func detect(_ data: Data, fileName: String) throws -> ModelFormat {
        if data.isEmpty {
            throw VigilError.modelFormat(fileName, at: "byte 0", "the file is empty")
        }
        if LightGBMTextLoader.sniff(data.prefix(16)) { return .lightgbm }
        let firstNonSpace = data.first { !(($0 == 0x20) || ($0 == 0x0A) || ($0 == 0x0D) || ($0 == 0x09)) }
        if firstNonSpace == UInt8(ascii: "{") {
            let head = String(decoding: data.prefix(4096), as: UTF8.self)
            if head.contains("\"learner\"") { return .xgboost }
            if head.contains("\"vigil-linear\"") { return .linearJSON }
            throw VigilError.modelFormat(fileName, at: "byte 0", "a JSON file that is neither an XGBoost model (no 'learner' object) nor Vigil linear JSON (format 'vigil-linear')")
        }
        if data.first == 0x08 || fileName.lowercased().hasSuffix(".onnx") { return .onnx }
        let preview = String(decoding: data.prefix(40), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: "\\n")
        throw VigilError.modelFormat(fileName, at: "byte 0", "not a recognised model file (starts with '\(preview)'); expected LightGBM text (first line 'tree'), XGBoost JSON, Vigil linear JSON or ONNX")
    }
}
