import Foundation
import Testing
@testable import VigilCore

/// Batch-norm folding and activation fusion happen in `ConvNetBuilder.build`, whichever loader
/// added the nodes: a channel affine that alone reads a convolution's output is folded into its
/// weights, an activation that alone reads it is fused, and anything read twice (or the graph
/// output) stays a separate node. Every folded net gives the unfolded reference's numbers.
struct ConvNetFoldingTests {
    static let cin = 2, cout = 3, side = 5

    static let weights: [Float] = (0..<(cout * cin * 9)).map { Float(($0 * 37) % 17) / 17 - 0.5 }
    static let bias: [Float] = [0.1, -0.2, 0.3]
    static let scale: [Double] = [1.5, -0.75, 0.25]
    static let shift: [Double] = [-0.3, 0.2, 0.05]
    static let input: [Float] = (0..<(2 * cin * side * side)).map { Float(($0 * 53) % 29) / 29 - 0.4 }

    /// conv(3x3, pad 1), then scale/shift, then an optional ReLU, in Double, for both samples.
    static func reference(relu: Bool, affine: Bool = true) -> [Double] {
        var out: [Double] = []
        for n in 0..<2 {
            for o in 0..<cout {
                for y in 0..<side {
                    for x in 0..<side {
                        var acc = Double(bias[o])
                        for c in 0..<cin {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let iy = y + ky - 1, ix = x + kx - 1
                                    guard iy >= 0, iy < side, ix >= 0, ix < side else { continue }
                                    acc += Double(weights[((o * cin + c) * 3 + ky) * 3 + kx]) * Double(input[((n * cin + c) * side + iy) * side + ix])
                                }
                            }
                        }
                        if affine { acc = acc * scale[o] + shift[o] }
                        out.append(relu ? max(0, acc) : acc)
                    }
                }
            }
        }
        return out
    }

    /// Builds conv -> affine -> relu; `extraReader` makes a second node read the convolution's
    /// output, `stopAtAffine` makes the affine's output the graph output.
    static func net(extraReader: Bool = false, stopAtAffine: Bool = false) throws -> ConvNet {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, cin, side, side])
        let w = try b.addConstant(name: "w", shape: [cout, cin, 3, 3], values: weights)
        let bb = try b.addConstant(name: "b", shape: [cout], values: bias)
        let c = try b.add(.conv(.init(padding: .explicit([1, 1, 1, 1]))), name: "conv", opType: "Conv", inputs: [b.inputID, w, bb], output: "c")
        let a = try b.addChannelAffine(name: "bn", opType: "BatchNormalization", input: c, scale: scale, shift: shift, output: "a")
        var output = a
        if !stopAtAffine {
            output = try b.add(.activation(.relu), name: "relu", opType: "Relu", inputs: [a], output: "r")
        }
        if extraReader {
            let t = try b.add(.activation(.tanh), name: "side", opType: "Tanh", inputs: [c], output: "t")
            output = try b.add(.add, name: "sum", opType: "Add", inputs: [output, t], output: "s")
        }
        return try b.build(output: output)
    }

    static func run(_ net: ConvNet) -> [Float] {
        var out = [Float](repeating: .nan, count: 2 * net.outputCount)
        input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { net.predict(i.baseAddress!, samples: 2, into: $0.baseAddress!) } }
        return out
    }

    @Test func aBatchNormAndAReluAreFoldedIntoTheConvolution() throws {
        let net = try Self.net()
        #expect(net.nodes.map(\.opType) == ["Conv+BatchNormalization+Relu"])
        #expect(net.nodes.map(\.name) == ["conv"])
        #expect(net.notes["batch norms folded into convolutions"] == "1")
        #expect(net.notes["activations fused into convolutions"] == "1")
        let got = Self.run(net), want = Self.reference(relu: true)
        #expect(got.count == want.count && want.count == 2 * Self.cout * Self.side * Self.side)
        for (g, w) in zip(got, want) { #expect(abs(Double(g) - w) <= 1e-5, "\(g) vs \(w)") }
    }

    @Test func theGraphOutputIsNeverFusedPast() throws {
        let net = try Self.net(stopAtAffine: true)
        #expect(net.nodes.map(\.opType) == ["Conv+BatchNormalization"])
        #expect(net.notes["activations fused into convolutions"] == nil)
        let got = Self.run(net), want = Self.reference(relu: false)
        for (g, w) in zip(got, want) { #expect(abs(Double(g) - w) <= 1e-5) }
    }

    @Test func aConvolutionReadTwiceIsNotFolded() throws {
        let net = try Self.net(extraReader: true)
        #expect(net.nodes.map(\.opType) == ["Conv", "BatchNormalization", "Relu", "Tanh", "Add"])
        #expect(net.notes["batch norms folded into convolutions"] == nil)
        // relu(bn(conv)) + tanh(conv), against the reference parts.
        let got = Self.run(net)
        let bnRelu = Self.reference(relu: true), plain = Self.reference(relu: false, affine: false)
        #expect(got.count == bnRelu.count)
        for i in got.indices { #expect(abs(Double(got[i]) - (bnRelu[i] + tanh(plain[i]))) <= 1e-5) }
    }

    /// A fold whose weights would overflow a float stays unfolded (and the net still loads).
    @Test func aFoldThatWouldOverflowIsLeftUnfolded() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 1, 3, 3])
        let w = try b.addConstant(name: "w", shape: [1, 1, 1, 1], values: [3e38])
        let c = try b.add(.conv(.init()), name: "conv", opType: "Conv", inputs: [b.inputID, w], output: "c")
        let a = try b.addChannelAffine(name: "bn", opType: "BatchNormalization", input: c, scale: [10], shift: [0], output: "a")
        let r = try b.add(.activation(.relu), name: "relu", opType: "Relu", inputs: [a], output: "r")
        let net = try b.build(output: r)
        #expect(net.nodes.map(\.opType) == ["Conv", "BatchNormalization", "Relu"])
    }
}
