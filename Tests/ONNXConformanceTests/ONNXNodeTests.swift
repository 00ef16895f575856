import Foundation
import ONNXProto
import SwiftProtobuf
import Testing
import VigilCore
import VigilFormats
import VigilKernels
import VigilTesting

/// ONNX's own backend node tests (Tests/Fixtures/onnx_node, copied from the `onnx` package by
/// collect.py, which lists what it left out and why). `cases.txt` names each case and its
/// runtime input (`input:x`, tract's convention); the case's other inputs (weights, shapes,
/// clip bounds) become initializers, as a deployed model holds them. Every output must equal
/// ONNX's expected output within onnxruntime's test tolerance, |got - want| <= 1e-7 + 1e-3 |want|,
/// on the OpenBLAS kernels and on the reference kernels.
struct ONNXNodeTests {
    static let root = Fixtures.url("onnx_node")

    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let runtimeInput: String
        var description: String { name }
    }

    /// The cases `cases.txt` lists. Without the file (a lost fixture folder) or with no case in
    /// it, one case that names the problem: its test fails to load it, so the suite cannot go
    /// green on zero cases (`everyCollectedCaseIsListed` also asserts the count).
    static let cases: [Case] = {
        let lost = [Case(name: "MISSING: \(root.path)/cases.txt cannot be read", runtimeInput: "")]
        guard let text = try? String(contentsOf: root.appendingPathComponent("cases.txt"), encoding: .utf8) else { return lost }
        let listed = text.split(separator: "\n").compactMap { line -> Case? in
            let parts = line.split(separator: " ")
            guard let name = parts.first, !name.hasPrefix("#") else { return nil }
            let input = parts.dropFirst().first { $0.hasPrefix("input:") }.map { String($0.dropFirst(6)) } ?? ""
            return Case(name: String(name), runtimeInput: input)
        }
        return listed.isEmpty ? lost : listed
    }()

    /// The cases collect.py copied (Tests/Fixtures/onnx_node/cases.txt, as committed).
    static let expectedCaseCount = 114

    static let rtol: Float = 1e-3
    static let atol: Float = 1e-7

    static func floats(_ t: Onnx_TensorProto) throws -> [Float] {
        #expect(t.dataType == 1, "\(t.name): float32 expected")
        if !t.rawData.isEmpty {
            return t.rawData.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
        }
        return t.floatData
    }

    /// Loads the case with every input but the runtime one turned into an initializer.
    static func load(_ c: Case) throws -> (ConvNet, input: [Float], expected: [Float]) {
        let dir = root.appendingPathComponent(c.name)
        var model = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: dir.appendingPathComponent("model.onnx")))
        let initialized = Set(model.graph.initializer.map(\.name))
        let inputs = model.graph.input.filter { !initialized.contains($0.name) }
        var runtime: [Float] = []
        var keep: [Onnx_ValueInfoProto] = []
        for (i, info) in inputs.enumerated() {
            var t = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: dir.appendingPathComponent("test_data_set_0/input_\(i).pb")))
            if info.name == c.runtimeInput {
                runtime = try floats(t)
                keep.append(info)
            } else {
                t.name = info.name
                model.graph.initializer.append(t)
            }
        }
        model.graph.input = model.graph.input.filter { initialized.contains($0.name) } + keep
        let expected = try floats(try Onnx_TensorProto(serializedBytes: try Data(contentsOf: dir.appendingPathComponent("test_data_set_0/output_0.pb"))))
        let net = try ONNXGraphLoader(fileName: "\(c.name)/model.onnx").loadGraph(data: try model.serializedData())
        return (net, runtime, expected)
    }

    @Test(arguments: cases)
    func nodeTestPasses(_ c: Case) throws {
        let (net, input, expected) = try Self.load(c)
        let samples = input.count / net.inputCount
        #expect(samples * net.inputCount == input.count, "\(c.name): input size \(input.count) vs \(net.inputCount) per sample")
        #expect(expected.count == samples * net.outputCount, "\(c.name): output size")
        for kernels in [KernelTable.best, KernelTable.reference] {
            var out = [Float](repeating: .nan, count: samples * net.outputCount)
            input.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { y in
                    net.predict(x.baseAddress!, samples: samples, into: y.baseAddress!, threads: 1, kernels: kernels)
                }
            }
            var worst: Float = 0
            var failures = 0
            for (a, b) in zip(out, expected) {
                let ok = (a.isNaN && b.isNaN) || (a == b) || abs(a - b) <= Self.atol + Self.rtol * abs(b)
                if !ok { failures += 1 }
                if a.isFinite && b.isFinite { worst = max(worst, abs(a - b)) }
            }
            #expect(failures == 0, "\(c.name) (\(kernels.name)): \(failures) of \(out.count) values outside rtol 1e-3 / atol 1e-7; max |diff| \(worst)")
        }
    }

    @Test func everyCollectedCaseIsListed() throws {
        let dirs = try FileManager.default.contentsOfDirectory(atPath: Self.root.path).filter { $0.hasPrefix("test_") }
        #expect(Set(dirs) == Set(Self.cases.map(\.name)))
        #expect(Self.cases.count >= 100)
        #expect(Self.cases.count == Self.expectedCaseCount, "cases.txt lists \(Self.cases.count) cases; \(Self.expectedCaseCount) are committed")
        #expect(!Self.cases.contains { $0.name.hasPrefix("MISSING") })
    }
}
