package import Foundation
package import VigilCore
internal import VigilJSON

/// Reads Vigil's linear JSON (`model.linear.json`, docs/FORMATS.md): coefficients as JSON
/// doubles, so a scikit-learn model travels without any float32 rounding.
package struct LinearJSONLoader: Sendable {
    package let fileName: String

    package init(fileName: String = "model.linear.json") {
        self.fileName = fileName
    }

    package func load(data: Data) throws -> LinearModel {
        let root = try JSONNode.parse(data, file: fileName)
        let allowed: Set<String> = ["format", "version", "link", "features", "coefficients", "intercept"]
        if let unknown = root.keys.first(where: { !allowed.contains($0) }) {
            throw root.fail("unknown key '\(unknown)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        guard try root["format"].string() == "vigil-linear" else { throw try root["format"].fail("format must be 'vigil-linear'") }
        guard try root["version"].int() == 1 else { throw try root["version"].fail("version must be 1") }
        let linkNode = try root["link"]
        let objective: Objective
        switch try linkNode.string() {
        case "logistic": objective = .binaryLogistic(scale: 1)
        case "identity": objective = .regression
        case let other: throw linkNode.fail("link '\(Untrusted.quote(other))' is not supported (logistic, identity are)")
        }
        let names = try root["features"].array().map { try $0.string() }
        let coefficients = try root["coefficients"].doubles()
        guard names.count == coefficients.count else {
            throw try root["coefficients"].fail("\(coefficients.count) coefficients for \(names.count) features")
        }
        var builder = LinearModelBuilder(featureCount: names.count, objective: objective, featureNames: names)
        builder.addOutput(coefficients: coefficients, intercept: try root["intercept"].double())
        do {
            return try builder.build()
        } catch let e as VigilError {
            throw VigilError(e.kind, "\(fileName): \(e.message)")
        }
    }
}
