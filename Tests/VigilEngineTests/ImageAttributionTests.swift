import Foundation
import Testing
import VigilEngine
import VigilFormats
import VigilTesting
@testable import VigilCore

/// Integrated gradients on image models (issue 6): completeness on the shipped retinopathy model
/// with the default steps, exactness on a linear net, and the heat-map.
struct ImageAttributionTests {
    static let retinopathy = Fixtures.repositoryRoot.appendingPathComponent("models/retinopathy")

    func explainAll(_ model: VigilModel, steps: Int? = nil) throws -> [PredictionRecord] {
        let reader = try ImageCohortReader(url: Self.retinopathy.appendingPathComponent("test_cohort.csv"), model: model)
        var records: [PredictionRecord] = []
        while let b = try reader.nextBatch(maxImages: 50) { records += try model.score(b, explain: true, integrationSteps: steps) }
        return records
    }

    // The integrated-gradient runs below take minutes of CPU under load and spread over the
    // cores: off the cooperative pool (`offPool`), so that the in-process servers of the server
    // suites keep answering meanwhile.
    @Test func completenessIsWithinOnePercentOnEveryRetinopathyTestImage() async throws {
        let model = try VigilModel.load(path: Self.retinopathy.path)
        let records = try await offPool { try self.explainAll(model) }
        #expect(records.count == 100)
        var worst = 0.0
        for r in records {
            let a = try #require(r.attribution)
            let i = try #require(a.integration)
            #expect(a.method == .integratedGradients && a.space == .logOdds && i.baseline == "black image")
            // The margin from the record's risk (sigmoid link), against base + Σφ.
            let p = r.outputs[0]
            let margin = log(p / (1 - p))
            let sum = a.contributions.reduce(0, +)
            let gap = abs(margin - a.base[0])
            // The record's reported error is the real one (to the float32 rounding of the margin).
            #expect(abs(abs(a.base[0] + sum - margin) - i.completenessError) <= 1e-5, "\(r.id)")
            #expect(i.completenessError <= 0.01 * gap, "image \(r.id): |Σφ − ΔF| = \(i.completenessError), ΔF = \(gap), steps \(i.steps)")
            worst = max(worst, i.relativeError)
        }
        let steps = records.map { $0.attribution?.integration?.steps ?? 0 }
        print("retinopathy integrated gradients: worst relative completeness error \(worst); steps \(steps.min()!)...\(steps.max()!), mean \(Double(steps.reduce(0, +)) / 100)")
    }

    /// The residual CNN fixture (batch norm folded and standalone, a projection shortcut,
    /// depthwise / grouped / dilated / strided convolutions, LeakyRelu, Clip, both poolings,
    /// Concat, a squeeze-excitation gate multiplying two computed tensors, MatMul, Tanh, Gemm):
    /// the same 1% completeness on its first 8 images, through every one of those backward steps.
    @Test func completenessHoldsOnTheResidualFixture() async throws {
        let dir = Fixtures.url("cnn/deep_resnet")
        let model = try VigilModel.load(path: dir.path)
        let reader = try ImageCohortReader(url: dir.appendingPathComponent("expected.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxImages: 8))
        for r in try await offPool({ try model.score(batch, explain: true) }) {
            let i = try #require(r.attribution?.integration)
            #expect(i.relativeError <= 0.01, "\(r.id): \(i.relativeError) after \(i.steps) steps")
        }
    }

    /// Against PyTorch autograd on the same model file (onnx2torch, final Sigmoid removed) and the
    /// same float32 input tensors (Tests/Fixtures/attribution/make_gradient_fixtures.py): the
    /// margin's gradient at 3 test images and halfway along their paths, and integrated gradients
    /// with the same fixed 256-interval midpoint rule.
    @Test func gradientsAndIntegratedGradientsEqualPyTorch() throws {
        let dir = Fixtures.url("attribution/retinopathy_gradients")
        let inputs = try FixtureTable(contentsOf: dir.appendingPathComponent("inputs.csv"))
        let expected = try FixtureTable(contentsOf: dir.appendingPathComponent("gradients.csv"))
        let ig = try FixtureTable(contentsOf: dir.appendingPathComponent("ig.csv"))
        let model = try VigilModel.load(path: Self.retinopathy.path)
        guard case .convNet(let net, _) = model.ir else { Issue.record("not a CNN"); return }
        let f = net.inputCount
        #expect(inputs.rows.count == 6 && expected.rows.count == 6 && ig.rows.count == 3)
        var tensors: [String: [Float]] = [:]
        for (row, want) in zip(inputs.rows, expected.rows) {
            #expect(row[0] == want[0])
            let x = row.dropFirst().map { Float($0)! }
            tensors[row[0]] = x
            var g = [Float](repeating: 0, count: f)
            net.gradient(x, samples: 1, seeds: [1], into: &g)
            let reference = want.dropFirst().map { Double($0)! }
            let scale = reference.map(abs).max()!
            let d = maxAbsDifference(g.map(Double.init), reference)
            // float32 sums in another order than PyTorch's: a few ulps of the largest gradient.
            #expect(d <= 1e-5 * scale, "\(row[0]): max |Vigil - torch| = \(d), max |gradient| = \(scale)")
        }
        guard let integrator = try model.explainer.get().integratedGradients else { Issue.record("no integrated gradients"); return }
        let fixed = try IntegratedGradients(
            net: net, baseline: integrator.baseline, baselineName: "black image", steps: 256, maxSteps: 256)
        for row in ig.rows {
            let x = try #require(tensors[row[0]])
            let r = x.withUnsafeBufferPointer { fixed.explain($0.baseAddress!) }
            #expect(r.steps == 256)
            let reference = row.dropFirst().map { Double($0)! }
            let scale = reference.map(abs).max()!
            let d = maxAbsDifference(r.attributions, reference)
            // 256 gradients along the path: where a pre-activation sits within float rounding of
            // a ReLU kink, the two runtimes can fall on different sides at one point, which moves
            // that point's share (1/256) of a few attributions. Measured: ≤ 8.7e-5 of max |φ|.
            #expect(d <= 2e-4 * scale, "\(row[0]): max |Vigil - torch| integrated gradients = \(d), max |φ| = \(scale)")
        }
    }

    @Test func blackPixelsGetNothingAndMoreStepsConverge() async throws {
        let model = try VigilModel.load(path: Self.retinopathy.path)
        let reader = try ImageCohortReader(url: Self.retinopathy.appendingPathComponent("test_cohort.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxImages: 3))
        let (coarse, fine) = try await offPool {
            (try model.score(batch, explain: true, integrationSteps: 16), try model.score(batch, explain: true, integrationSteps: 256))
        }
        let spec = try #require(model.imageInput)
        let black = IntegratedGradients.blackImage(spec)
        for (c, f) in zip(coarse, fine) {
            let a = try #require(f.attribution)
            let i = try #require(a.integration)
            // Where the image equals the baseline (the black border), x − x′ = 0.
            let blackValues = a.values.indices.filter { Float(a.values[$0]) == black[$0] }
            #expect(!blackValues.isEmpty)
            #expect(blackValues.allSatisfy { a.contributions[$0] == 0 })
            // Both meet the 1% target, whatever the starting grid.
            #expect(i.relativeError <= 0.01, "\(f.id): \(i.relativeError)")
            #expect((c.attribution?.integration?.relativeError ?? 1) <= 0.01)
        }
    }

    @Test func heatMapIsAPNGOfBothPanels() throws {
        let model = try VigilModel.load(path: Self.retinopathy.path)
        let reader = try ImageCohortReader(url: Self.retinopathy.appendingPathComponent("test_cohort.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxImages: 1))
        let record = try #require(try model.score(batch, explain: true).first)
        let map = try Heatmap(try #require(record.attribution), spec: try #require(model.imageInput))
        // 28 px × 9 per panel, two panels and a 4 px gap; a 10 px colour bar under them.
        #expect(map.width == 2 * 252 + 4 && map.height == 252 + 4 + 10)
        #expect(map.saturation > 0)
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("1.png")
        try map.write(to: url)
        let decoded = try ImageDecoder.decode(try Data(contentsOf: url), name: url.path)
        #expect(decoded.width == map.width && decoded.height == map.height && decoded.pixels == map.rgb)
        // The left panel is the input image: its centre pixel is the preprocessed value undone.
        let spec = try #require(model.imageInput)
        let a = try #require(record.attribution)
        let centre = 14 * 28 + 14
        let red = (a.values[centre] * Double(spec.std[0]) + Double(spec.mean[0])) / Double(spec.scale)
        #expect(abs(Double(map.rgb[(126 * map.width + 126) * 3]) - red) <= 1)
    }

    @Test func stepsOutOfRangeAreRefused() throws {
        let model = try VigilModel.load(path: Self.retinopathy.path)
        let reader = try ImageCohortReader(url: Self.retinopathy.appendingPathComponent("test_cohort.csv"), model: model)
        let batch = try #require(try reader.nextBatch(maxImages: 1))
        #expect(throws: VigilError.self) { _ = try model.score(batch, explain: true, integrationSteps: 1) }
    }
}
