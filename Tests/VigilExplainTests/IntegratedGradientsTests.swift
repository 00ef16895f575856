import Foundation
import Testing
import VigilCore
@testable import VigilExplain

/// Integrated gradients where the answer is known in closed form.
struct IntegratedGradientsTests {
    /// F(x) = relu(x₀ − 0.3) from 0 to 1: the gradient jumps from 0 to 1 at α = 0.3, which no
    /// fixed grid of midpoints integrates exactly; refinement halves the interval holding the
    /// kink until the completeness error is within the tolerance.
    @Test func refinementFindsAKink() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 1])
        let w = try b.addConstant(name: "w", shape: [1, 1], values: [1])
        let c = try b.addConstant(name: "c", shape: [1], values: [-0.3])
        let h = try b.add(.gemm(.init()), name: "h", opType: "Gemm", inputs: [b.inputID, w, c], output: "h")
        let y = try b.add(.activation(.relu), name: "r", opType: "Relu", inputs: [h], output: "y")
        let net = try b.build(output: y)
        let ig = try IntegratedGradients(net: net, baseline: [0], baselineName: "zero", steps: 2, maxSteps: 200, tolerance: 1e-4)
        let x: [Float] = [1]
        let r = x.withUnsafeBufferPointer { ig.explain($0.baseAddress!) }
        #expect(abs(r.attributions[0] - 0.7) <= 1e-4 * 0.7 + 1e-7, "φ = \(r.attributions[0])")
        #expect(r.steps > 2 && r.steps <= 200)
        #expect(r.relativeError <= 1e-4)
        // Without refinement the two midpoints (0.25, 0.75) give 0.5, an error of 0.2.
        let fixed = try IntegratedGradients(net: net, baseline: [0], baselineName: "zero", steps: 2, maxSteps: 2)
        let coarse = x.withUnsafeBufferPointer { fixed.explain($0.baseAddress!) }
        #expect(coarse.steps == 2 && abs(coarse.attributions[0] - 0.5) <= 1e-7 && abs(coarse.completenessError[0] - 0.2) <= 1e-6)
    }

    /// For a linear net F(x) = w·x + c the gradient is w everywhere: φᵢ = wᵢ (xᵢ − x′ᵢ) exactly,
    /// with any number of steps.
    @Test func aLinearNetGetsExactlyItsWeightsTimesTheDisplacement() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 2, 2, 2])
        let flat = try b.add(.reshape(.flatten(axis: 1)), name: "f", opType: "Flatten", inputs: [b.inputID], output: "f")
        let weights: [Float] = [0.5, -1, 2, 0.25, 0, 3, -0.75, 1.5]
        let w = try b.addConstant(name: "w", shape: [8, 1], values: weights)
        let c = try b.addConstant(name: "c", shape: [1], values: [0.3])
        let y = try b.add(.gemm(.init()), name: "g", opType: "Gemm", inputs: [flat, w, c], output: "y")
        let net = try b.build(output: y)
        let baseline: [Float] = [1, 1, 1, 1, -1, -1, -1, -1]
        let ig = try IntegratedGradients(net: net, baseline: baseline, baselineName: "test", steps: 3)
        let x: [Float] = [2, 0, -1, 4, 0.5, 1, 2, -3]
        let r = x.withUnsafeBufferPointer { ig.explain($0.baseAddress!) }
        #expect(r.steps == 3)
        for i in 0..<8 {
            #expect(abs(r.attributions[i] - Double(weights[i]) * Double(x[i] - baseline[i])) <= 1e-6)
        }
        #expect(r.completenessError[0] <= 1e-5)
        #expect(abs(r.base[0] - (zip(weights, baseline).reduce(0.3) { $0 + Double($1.0 * $1.1) })) <= 1e-6)
    }

    /// Curvature through a Gemm and Tanh: the rows integrate to F(x) − F(x′) within the
    /// tolerance, refining when 2 midpoints are not enough.
    @Test func refinementMeetsTheToleranceOnASmoothNet() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 3])
        let w = try b.addConstant(name: "w", shape: [3, 2], values: [1, -2, 0.5, 1, 2, 0.5])
        let h = try b.add(.gemm(.init()), name: "h", opType: "Gemm", inputs: [b.inputID, w], output: "h")
        let t = try b.add(.activation(.tanh), name: "t", opType: "Tanh", inputs: [h], output: "t")
        let v = try b.addConstant(name: "v", shape: [2, 1], values: [1.5, -1])
        let y = try b.add(.gemm(.init()), name: "y", opType: "Gemm", inputs: [t, v], output: "y")
        let net = try b.build(output: y)
        let ig = try IntegratedGradients(net: net, baseline: [0, 0, 0], baselineName: "zero", steps: 2, maxSteps: 512, tolerance: 1e-4)
        let x: [Float] = [1.2, -0.7, 2.0]
        let r = x.withUnsafeBufferPointer { ig.explain($0.baseAddress!) }
        #expect(r.steps > 2 && r.steps <= 512)
        #expect(r.relativeError <= 1e-4)
        #expect(abs(r.attributions.reduce(0, +) - (r.margins[0] - r.base[0])) <= 1e-4 * abs(r.margins[0] - r.base[0]) + 1e-6)
        // Two rows over two threads give the same as one at a time.
        let two: [Float] = x + [-0.3, 0.9, 0.1]
        let both = two.withUnsafeBufferPointer { ig.explain($0.baseAddress!, rows: 2, threads: 2) }
        #expect(both[0] == r)
    }

    @Test func badBaselinesAndStepsAreRefused() throws {
        var b = try ConvNetBuilder(inputName: "x", inputShape: [nil, 2])
        let w = try b.addConstant(name: "w", shape: [2, 1], values: [1, 1])
        let y = try b.add(.gemm(.init()), name: "g", opType: "Gemm", inputs: [b.inputID, w], output: "y")
        let net = try b.build(output: y)
        #expect(throws: VigilError.self) { _ = try IntegratedGradients(net: net, baseline: [0], baselineName: "short") }
        #expect(throws: VigilError.self) { _ = try IntegratedGradients(net: net, baseline: [0, .nan], baselineName: "nan") }
        #expect(throws: VigilError.self) { _ = try IntegratedGradients(net: net, baseline: [0, 0], baselineName: "z", steps: 1) }
        #expect(throws: VigilError.self) { _ = try IntegratedGradients(net: net, baseline: [0, 0], baselineName: "z", steps: 8, maxSteps: 4) }
    }
}
