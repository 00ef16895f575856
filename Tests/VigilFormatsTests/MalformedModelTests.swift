import Foundation
import Testing
import VigilCore
import VigilFormats
import VigilTesting

/// Every malformed file is refused with a message naming the problem and where it is: never a
/// trap (Tests/Fixtures/malformed, made by make_fixtures.py).
struct MalformedModelTests {
    static let cases: [(file: String, kind: VigilError.Kind, says: [String])] = [
        ("truncated_lightgbm.txt", .modelFormat, ["line", "Tree=3", "truncated"]),
        ("truncated_xgboost.json", .modelFormat, ["not valid JSON", "truncated"]),
        ("truncated.onnx", .modelFormat, ["not a valid ONNX model", "truncated"]),
        ("lightgbm_bad_feature_index.txt", .modelFormat, ["feature index 13", "13 features"]),
        ("lightgbm_bad_decision_type.txt", .modelFormat, ["decision_type[0] = 16", "not a known LightGBM decision type"]),
        ("lightgbm_unknown_objective.txt", .modelFormat, ["objective 'lambdarank_x' is not supported", "line 7"]),
        ("xgboost_unknown_objective.json", .modelFormat, ["objective 'rank:unknown' is not supported", "learner.objective.name"]),
        ("not_a_model.txt", .modelFormat, ["not a recognised model file"]),
        ("onnx_unsupported_op.onnx", .modelFormat, ["TopK", "not supported"]),
    ]

    @Test(arguments: cases.map(\.file))
    func malformedFileIsRefusedWithItsReason(file: String) throws {
        let c = Self.cases.first { $0.file == file }!
        let data = try Data(contentsOf: Fixtures.url("malformed/\(file)"))
        let error = #expect(throws: VigilError.self) {
            _ = try ModelFileLoader.load(data: data, fileName: file)
        }
        #expect(error?.kind == c.kind)
        for s in c.says { #expect(error?.message.contains(s) == true, "'\(error?.message ?? "")' should say '\(s)'") }
        #expect(error?.message.hasPrefix(file) == true, "the message names the file")
    }

    @Test func everyPrefixOfAModelIsRefusedOrLoadsWithoutATrap() throws {
        // Cut a valid model at many points: each cut must throw (or, for a cut after the last
        // tree, load); none may crash.
        for name in ["lightgbm/stumps/model.txt", "xgboost/default_left/model.json", "linear/sklearn_onnx_float/model.onnx"] {
            let data = try Data(contentsOf: Fixtures.url(name))
            for cut in stride(from: 0, to: data.count, by: max(1, data.count / 97)) {
                _ = try? ModelFileLoader.load(data: data.prefix(cut), fileName: name)
            }
        }
    }

    @Test func anEmptyFileIsRefused() {
        #expect(throws: VigilError.self) { _ = try ModelFileLoader.load(data: Data(), fileName: "empty.txt") }
    }

    @Test func aManifestFormatThatDisagreesWithTheFileIsRefused() throws {
        let data = try Data(contentsOf: Fixtures.url("lightgbm/stumps/model.txt"))
        #expect(throws: VigilError.self) { _ = try ModelFileLoader.load(data: data, fileName: "model.txt", expected: .xgboost) }
    }
}
