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
        // Cut a valid model at many points: each cut either throws a VigilError with a bounded
        // message, or (a cut after the last tree, in trailing whitespace or metadata) loads a
        // model of the same size as the whole file; most cuts are refused; none may crash.
        func size(_ ir: ModelIR) -> String {
            switch ir {
            case .trees(let t): return "trees \(t.treeCount) leaves \(t.leafCount) features \(t.featureCount)"
            case .linear(let l): return "linear \(l.featureCount)x\(l.outputCount)"
            case .convNet(let n, _): return "net \(n.nodes.count) nodes \(n.inputCount) inputs"
            }
        }
        for name in ["lightgbm/stumps/model.txt", "xgboost/default_left/model.json", "linear/sklearn_onnx_float/model.onnx"] {
            let data = try Data(contentsOf: Fixtures.url(name))
            let whole = try ModelFileLoader.load(data: data, fileName: name)
            var cuts = 0, refused = 0
            for cut in stride(from: 0, to: data.count, by: max(1, data.count / 97)) {
                cuts += 1
                do {
                    let (ir, format) = try ModelFileLoader.load(data: data.prefix(cut), fileName: name)
                    #expect(format == whole.1, "\(name) cut at \(cut): loaded as \(format)")
                    #expect(size(ir) == size(whole.0), "\(name) cut at \(cut) of \(data.count) loaded a different model: \(size(ir))")
                } catch let e as VigilError {
                    refused += 1
                    #expect(!e.message.isEmpty && e.message.utf8.count < 1000, "\(name) cut at \(cut): \(e.message.prefix(200))")
                    if cut > 0 { #expect(e.message.contains(name), "\(name) cut at \(cut): the message names the file: \(e.message.prefix(200))") }
                }
                if cut < data.count / 2 { #expect(refused == cuts, "\(name): the cut at \(cut), before half the file, loaded") }
            }
            #expect(cuts >= 97, "\(name): \(cuts) cuts")
            // A LightGBM file ends with its training parameters, after `end of trees`: cuts
            // there load the whole model; everything before is refused.
            #expect(refused * 4 >= cuts * 3, "\(name): only \(refused) of \(cuts) cuts refused")
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
