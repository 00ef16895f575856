import Foundation
import Testing
import VigilCore
import VigilFormats
import VigilTesting

/// The ONNX graph loader: routing after the linear loader, and malformed CNN files refused at
/// load with the node and operator named (Tests/Fixtures/malformed/cnn_*, made by
/// Tests/Fixtures/cnn/make_cnn_fixtures.py).
struct ONNXGraphLoaderTests {
    static let cases: [(file: String, says: [String])] = [
        ("cnn_unsupported_op.onnx", ["node 'lrn1' (LRN)", "operator 'LRN' is not supported"]),
        ("cnn_external_data.onnx", ["initializer 'w'", "external-data tensors are not supported"]),
        ("cnn_bad_auto_pad.onnx", ["node 'conv' (Conv)", "auto_pad 'SAME_SIDEWAYS' is not supported"]),
        ("cnn_batchnorm_training.onnx", ["node 'bn1' (BatchNormalization)", "training_mode = 1"]),
    ]

    @Test(arguments: cases.map(\.file))
    func aMalformedCNNIsRefusedNamingNodeAndOperator(file: String) throws {
        let c = Self.cases.first { $0.file == file }!
        let data = try Data(contentsOf: Fixtures.url("malformed/\(file)"))
        let error = #expect(throws: VigilError.self) { _ = try ModelFileLoader.load(data: data, fileName: file) }
        #expect(error?.kind == .modelFormat)
        for s in c.says { #expect(error?.message.contains(s) == true, "'\(error?.message ?? "")' should say '\(s)'") }
        #expect(error?.message.hasPrefix(file) == true)
    }

    @Test func everyPrefixOfACNNIsRefusedWithoutATrap() throws {
        let data = try Data(contentsOf: Fixtures.url("cnn/deep_resnet/model.onnx"))
        for cut in stride(from: 0, to: data.count, by: max(1, data.count / 211)) {
            #expect(throws: VigilError.self) { _ = try ModelFileLoader.load(data: data.prefix(cut), fileName: "cut.onnx") }
        }
    }

    @Test func logisticGraphsStayLinearAndCNNsBecomeConvNets() throws {
        let (linear, _) = try ModelFileLoader.load(data: try Data(contentsOf: Fixtures.url("linear/matmul_sigmoid_float/model.onnx")), fileName: "m.onnx")
        guard case .linear = linear else { Issue.record("a logistic graph must load as a linear model"); return }
        let (cnn, format) = try ModelFileLoader.load(data: try Data(contentsOf: Fixtures.url("cnn/deep_resnet/model.onnx")), fileName: "d.onnx")
        #expect(format == .onnx)
        guard case .convNet(let net, let objective) = cnn else { Issue.record("a CNN must load as a ConvNet"); return }
        #expect(objective == .binaryLogistic(scale: 1))
        #expect(net.batchMode == .dynamic && net.sampleInputShape == [3, 28, 28] && net.outputCount == 1)
        // Nine batch norms folded into their convolutions, one left standalone (after Concat).
        #expect(net.notes["batch norms folded into convolutions"] == "9")
        #expect(net.nodes.filter { $0.opType == "BatchNormalization" }.count == 1)
        #expect(!net.nodes.contains { $0.opType.hasPrefix("Sigmoid") && $0.output == net.output })
    }

    @Test func theWholeGraphKeepsItsFinalSigmoid() throws {
        let net = try ONNXGraphLoader(fileName: "d.onnx").loadGraph(data: try Data(contentsOf: Fixtures.url("cnn/deep_resnet/model.onnx")))
        #expect(net.nodes.last?.opType == "Sigmoid")
    }
}
