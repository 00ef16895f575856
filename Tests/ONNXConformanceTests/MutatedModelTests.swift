import Foundation
import ONNXProto
import SwiftProtobuf
import Testing
import VigilCore
import VigilFormats
import VigilTesting

/// Seeded mutations of the deep residual fixture (attribute values, initializer and input
/// dimensions, rewired inputs, swapped nodes, duplicated attributes): each mutant is refused
/// with a `VigilError` or loads and runs; none may trap. (A differential version against
/// onnxruntime found the duplicated-attribute, zero-dimension and link-attribute checks.)
struct MutatedModelTests {
    struct Generator {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(n, 1)))
        }
    }

    static func mutate(_ base: Onnx_ModelProto, _ g: inout Generator) -> Onnx_ModelProto {
        var m = base
        let extremes: [Int64] = [0, -1, -5, 1 << 40, 1 << 31, 7, 100, 3]
        for _ in 0..<(1 + g.next(3)) {
            switch g.next(6) {
            case 0:
                let n = g.next(m.graph.node.count)
                guard !m.graph.node[n].attribute.isEmpty else { continue }
                let a = g.next(m.graph.node[n].attribute.count)
                if !m.graph.node[n].attribute[a].ints.isEmpty {
                    let i = g.next(m.graph.node[n].attribute[a].ints.count)
                    m.graph.node[n].attribute[a].ints[i] = extremes[g.next(extremes.count)]
                } else {
                    m.graph.node[n].attribute[a].i = extremes[g.next(extremes.count)]
                    m.graph.node[n].attribute[a].f = [Float.nan, .infinity, -1, 0][g.next(4)]
                }
            case 1:
                let t = g.next(m.graph.initializer.count)
                guard !m.graph.initializer[t].dims.isEmpty else { continue }
                m.graph.initializer[t].dims[g.next(m.graph.initializer[t].dims.count)] = extremes[g.next(extremes.count)]
            case 2:
                var dims = m.graph.input[0].type.tensorType.shape.dim
                dims[g.next(dims.count)].dimValue = extremes[g.next(extremes.count)]
                m.graph.input[0].type.tensorType.shape.dim = dims
            case 3:
                let n = g.next(m.graph.node.count)
                guard !m.graph.node[n].input.isEmpty else { continue }
                let names = m.graph.initializer.map(\.name) + [m.graph.input[0].name, "nowhere"]
                m.graph.node[n].input[g.next(m.graph.node[n].input.count)] = names[g.next(names.count)]
            case 4:
                m.graph.node.swapAt(g.next(m.graph.node.count), g.next(m.graph.node.count))
            default:
                let n = g.next(m.graph.node.count)
                var a = Onnx_AttributeProto()
                a.name = ["group", "axis", "pads", "strides"][g.next(4)]
                a.type = .ints
                a.ints = [Int64(g.next(3)), 1]
                m.graph.node[n].attribute.append(a)
            }
        }
        return m
    }

    @Test func mutantsAreRefusedOrRunWithoutATrap() throws {
        let base = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: Fixtures.url("cnn/deep_resnet/model.onnx")))
        var g = Generator(state: 20240611)
        var loaded = 0, refused = 0
        for _ in 0..<250 {
            let data = try Self.mutate(base, &g).serializedData()
            do {
                let net = try ONNXGraphLoader(fileName: "mutant.onnx").loadGraph(data: data)
                loaded += 1
                let samples = net.batchMode == .dynamic ? 2 : 1
                let x = (0..<(samples * net.inputCount)).map { Float($0 % 17) / 8 - 1 }
                var y = [Float](repeating: 0, count: samples * net.outputCount)
                net.predict(x, samples: samples, into: &y, threads: 2)
            } catch let e as VigilError {
                refused += 1
                #expect(e.message.hasPrefix("mutant.onnx"), "\(e.message)")
            }
        }
        #expect(loaded > 0 && refused > 0)
    }

    /// Structural mutants of the linear fixtures (issue 13: a LinearClassifier node with no input
    /// trapped on `node.input[0]`): inputs or outputs dropped, a node reading its own output
    /// (a cycle), empty attribute lists. Each is refused with a VigilError naming the file.
    @Test func linearGraphsWithMissingInputsOrCyclesAreRefused() throws {
        var cases = 0
        for name in ["linear/sklearn_onnx_float/model.onnx", "linear/matmul_sigmoid_float/model.onnx", "linear/sklearn_onnx_double/model.onnx"] {
            let base = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: Fixtures.url(name)))
            for n in base.graph.node.indices {
                var variants: [Onnx_ModelProto] = []
                var noInputs = base
                noInputs.graph.node[n].input = []
                variants.append(noInputs)
                var oneInput = base
                oneInput.graph.node[n].input = Array(base.graph.node[n].input.prefix(1))
                variants.append(oneInput)
                var noOutputs = base
                noOutputs.graph.node[n].output = []
                variants.append(noOutputs)
                var cycle = base
                if let out = base.graph.node[n].output.first { cycle.graph.node[n].input = [out, out] }
                variants.append(cycle)
                for v in variants {
                    cases += 1
                    let data = try v.serializedData()
                    do {
                        _ = try ModelFileLoader.load(data: data, fileName: "mutant.onnx")
                    } catch let e as VigilError {
                        #expect(!e.message.isEmpty && e.message.utf8.count < 1000, "\(e.message.prefix(300))")
                        #expect(e.message.contains("mutant.onnx"), "\(e.message.prefix(300))")
                    }
                }
            }
            // The LinearClassifier (or first) node with no input at all: refused by name.
            var m = base
            if let i = m.graph.node.firstIndex(where: { $0.opType == "LinearClassifier" }) {
                m.graph.node[i].input = []
                let error = #expect(throws: VigilError.self) { _ = try ONNXLinearLoader(fileName: "mutant.onnx").load(data: try m.serializedData()) }
                #expect(error?.message.contains("LinearClassifier") == true, "\(error?.message ?? "")")
            }
        }
        #expect(cases >= 20, "\(cases) structural mutants")
    }
}
