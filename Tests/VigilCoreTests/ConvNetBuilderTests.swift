import Foundation
import Testing
@testable import VigilCore
import VigilKernels

/// The ConvNet builder's checks (every shape, weight and attribute the executor relies on), its
/// batch-mode analysis and its buffer plan.
struct ConvNetBuilderTests {
    func conv(_ b: inout ConvNetBuilder, _ x: Int, cin: Int, cout: Int, k: Int = 3, _ c: ConvNet.Convolution = .init(padding: .explicit([1, 1, 1, 1])), name: String) throws -> Int {
        let w = try b.addConstant(name: "\(name).w", shape: [cout, cin / c.groups, k, k], values: [Float](repeating: 0.1, count: cout * cin / c.groups * k * k))
        return try b.add(.conv(c), name: name, opType: "Conv", inputs: [x, w], output: "\(name).y")
    }

    @Test func shapesAreInferredAsONNXDefinesThem() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 3, 28, 28])
        let c1 = try conv(&b, b.inputID, cin: 3, cout: 8, name: "c1")
        #expect(b.shape(of: c1) == [1, 8, 28, 28])
        let s2 = try conv(&b, c1, cin: 8, cout: 8, ConvNet.Convolution(strides: [2, 2], padding: .sameUpper), name: "s2")
        #expect(b.shape(of: s2) == [1, 8, 14, 14])
        let p = try b.add(.maxPool(.init(kernelShape: [3, 3], strides: [2, 2], ceilMode: true)), name: "p", opType: "MaxPool", inputs: [s2], output: "p")
        #expect(b.shape(of: p) == [1, 8, 7, 7])  // ceil((14 - 3) / 2) + 1 = 7
        let g = try b.add(.globalAveragePool, name: "g", opType: "GlobalAveragePool", inputs: [p], output: "g")
        let f = try b.add(.reshape(.flatten(axis: 1)), name: "f", opType: "Flatten", inputs: [g], output: "f")
        #expect(b.shape(of: f) == [1, 8])
        let net = try b.build(output: f)
        #expect(net.batchMode == .dynamic)
        #expect(net.sampleInputShape == [3, 28, 28] && net.sampleOutputShape == [8])
    }

    @Test func aChannelMismatchIsRefusedNamingTheNode() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 3, 8, 8])
        let error = #expect(throws: VigilError.self) { _ = try conv(&b, b.inputID, cin: 4, cout: 2, name: "stem") }
        #expect(error?.message.contains("node 'stem' (Conv)") == true)
        #expect(error?.message.contains("the input has 3 channels") == true)
    }

    @Test func aWindowLargerThanThePaddedInputIsRefused() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [1, 1, 2, 2])
        let error = #expect(throws: VigilError.self) {
            _ = try b.add(.maxPool(.init(kernelShape: [3, 3])), name: "p", opType: "MaxPool", inputs: [b.inputID], output: "p")
        }
        #expect(error?.message.contains("larger than the padded input") == true)
    }

    @Test func nonFiniteWeightsAndBadGroupsAreRefused() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 4, 8, 8])
        #expect(throws: VigilError.self) { _ = try b.addConstant(name: "w", shape: [1], values: [.nan]) }
        let error = #expect(throws: VigilError.self) {
            _ = try conv(&b, b.inputID, cin: 4, cout: 6, ConvNet.Convolution(groups: 4), name: "g")
        }
        #expect(error?.message.contains("group 4 must divide") == true)
    }

    @Test func mixingSamplesIsRefusedForADynamicBatchAndFixesAStaticOne() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 5])
        let s = try b.add(.softmax(axis: 0, legacy: false), name: "sm", opType: "Softmax", inputs: [b.inputID], output: "y")
        let error = #expect(throws: VigilError.self) { _ = try b.build(output: s) }
        #expect(error?.message.contains("softmax over the batch axis") == true)

        var f = try ConvNetBuilder(inputName: "x", inputShape: [3, 5])
        let y = try f.add(.softmax(axis: 0, legacy: false), name: "sm", opType: "Softmax", inputs: [f.inputID], output: "y")
        #expect(try f.build(output: y).batchMode == .fixed)

        // A unit batch stays dynamic when nothing mixes samples...
        var u = try ConvNetBuilder(inputName: "x", inputShape: [1, 5])
        let r = try u.add(.activation(.relu), name: "r", opType: "Relu", inputs: [u.inputID], output: "y")
        #expect(try u.build(output: r).batchMode == .dynamic)
        // ...and becomes fixed when a Reshape pins the first axis.
        var p = try ConvNetBuilder(inputName: "x", inputShape: [1, 2, 3])
        let v = try p.add(.reshape(.shape([1, -1], allowZero: false)), name: "v", opType: "Reshape", inputs: [p.inputID], output: "y")
        #expect(try p.build(output: v).batchMode == .fixed)
    }

    @Test func constantSubgraphsAreFoldedAtLoad() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 3])
        let a = try b.addConstant(name: "a", shape: [3], values: [1, 2, 3])
        let c = try b.addConstant(name: "c", shape: [3], values: [10, 20, 30])
        let s = try b.add(.add, name: "s", opType: "Add", inputs: [a, c], output: "s")
        #expect(b.isConstant(s) && b.constant(s) == [11, 22, 33])
        let y = try b.add(.mul, name: "m", opType: "Mul", inputs: [b.inputID, s], output: "y")
        let net = try b.build(output: y)
        #expect(net.nodes.count == 1)
        var out = [Float](repeating: 0, count: 6)
        net.predict([1, 1, 1, 2, 2, 2], samples: 2, into: &out)
        #expect(out == [11, 22, 33, 22, 44, 66])
    }

    @Test func buffersAreReusedOnceTheirLastReaderHasRun() throws {
        // A chain of 6 same-size activations needs 2 buffers, not 6.
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 4, 16, 16])
        var t = b.inputID
        for i in 0..<6 { t = try b.add(.activation(.relu), name: "r\(i)", opType: "Relu", inputs: [t], output: "r\(i)") }
        let net = try b.build(output: t)
        #expect(net.plan.arenaFloatsPerSample == 2 * 4 * 16 * 16)
        // A residual keeps its source alive until the Add.
        var r = try ConvNetBuilder(inputName: "x", inputShape: [nil, 4, 8, 8])
        let s = try r.add(.activation(.relu), name: "s", opType: "Relu", inputs: [r.inputID], output: "s")
        let h1 = try r.add(.activation(.tanh), name: "h1", opType: "Tanh", inputs: [s], output: "h1")
        let h2 = try r.add(.activation(.sigmoid), name: "h2", opType: "Sigmoid", inputs: [h1], output: "h2")
        let y = try r.add(.add, name: "y", opType: "Add", inputs: [h2, s], output: "y")
        let rn = try r.build(output: y)
        var x = [Float](repeating: 0, count: 2 * 256)
        for i in x.indices { x[i] = Float(i % 13) / 6 - 1 }
        var out = [Float](repeating: 0, count: x.count)
        rn.predict(x, samples: 2, into: &out)
        for i in x.indices {
            let sv = max(x[i], 0)
            #expect(abs(out[i] - (1 / (1 + expf(-tanhf(sv))) + sv)) <= 1e-6)
        }
    }

    @Test func chunksAndThreadsGiveTheSameOutputs() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 2, 6, 6])
        b.chunkCapacity = 3
        let c = try conv(&b, b.inputID, cin: 2, cout: 4, name: "c")
        let net = try b.build(output: c)
        let n = 11
        var x = [Float](repeating: 0, count: n * net.inputCount)
        for i in x.indices { x[i] = Float((i * 7) % 17) / 8 - 1 }
        var one = [Float](repeating: 0, count: n * net.outputCount)
        var two = one
        net.predict(x, samples: n, into: &one, threads: 1)
        net.predict(x, samples: n, into: &two, threads: 2)
        #expect(one == two)
        var single = [Float](repeating: 0, count: net.outputCount)
        x.withUnsafeBufferPointer { net.predict($0.baseAddress! + 10 * net.inputCount, samples: 1, into: &single) }
        #expect(zip(single, one.suffix(net.outputCount)).allSatisfy { abs($0 - $1) <= 1e-6 })
    }
}
