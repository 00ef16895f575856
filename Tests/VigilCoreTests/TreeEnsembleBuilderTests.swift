import Testing
@testable import VigilCore

/// The builder refuses every structure that could make traversal read out of bounds or loop.
struct TreeEnsembleBuilderTests {
    static let numeric = NodeFlags(defaultLeft: true, missing: .defaultChild)

    func builder(features: Int = 2) -> TreeEnsembleBuilder {
        TreeEnsembleBuilder(featureCount: features, objective: .binaryLogistic(scale: 1))
    }

    func expectRefused(_ nodes: [TreeNode], containing text: String) {
        var b = builder()
        #expect {
            try b.addTree(nodes: nodes, output: 0)
        } throws: { error in
            guard let e = error as? VigilError, e.kind == .modelInvalid else { return false }
            return e.message.contains(text)
        }
    }

    @Test func acceptsAValidTree() throws {
        var b = builder()
        try b.addTree(nodes: [
            TreeNode(value: 0.5, feature: 1, left: 1, right: 2, flags: Self.numeric), .leaf(-1), .leaf(1),
        ], output: 0)
        let model = try b.build()
        #expect(model.treeCount == 1 && model.leafCount == 2 && model.maxDepth == 1)
    }

    @Test func refusesAFeatureIndexPastTheModel() {
        expectRefused([TreeNode(value: 0, feature: 2, left: 1, right: 2, flags: Self.numeric), .leaf(0), .leaf(1)],
                      containing: "splits on feature index 2 but the model has 2 features")
    }

    @Test func refusesAChildOutsideTheTree() {
        expectRefused([TreeNode(value: 0, feature: 0, left: 1, right: 7, flags: Self.numeric), .leaf(0)],
                      containing: "outside the tree's 2 nodes")
    }

    @Test func refusesACycle() {
        expectRefused([
            TreeNode(value: 0, feature: 0, left: 1, right: 2, flags: Self.numeric),
            TreeNode(value: 0, feature: 0, left: 0, right: 2, flags: Self.numeric), .leaf(1),
        ], containing: "reached twice")
    }

    @Test func refusesAnOrphanNode() {
        expectRefused([TreeNode(value: 0, feature: 0, left: 1, right: 2, flags: Self.numeric), .leaf(0), .leaf(1), .leaf(2)],
                      containing: "cannot be reached from the root")
    }

    @Test func refusesNaNThresholdAndInfiniteLeaf() {
        expectRefused([TreeNode(value: .nan, feature: 0, left: 1, right: 2, flags: Self.numeric), .leaf(0), .leaf(1)],
                      containing: "threshold is NaN")
        expectRefused([TreeNode(value: 0, feature: 0, left: 1, right: 2, flags: Self.numeric), .leaf(.infinity), .leaf(1)],
                      containing: "is not finite")
    }

    @Test func refusesAMissingCategorySet() {
        expectRefused([
            TreeNode(value: 3, feature: 0, left: 1, right: 2, flags: NodeFlags(defaultLeft: false, missing: .defaultChild, categorical: true)),
            .leaf(0), .leaf(1),
        ], containing: "category set 3.0 does not exist")
    }

    @Test func refusesAnOutputPastTheObjective() {
        var b = builder()
        #expect(throws: VigilError.self) { try b.addTree(nodes: [.leaf(0)], output: 1) }
    }

    @Test func refusesAnEmptyModel() {
        #expect(throws: VigilError.self) { try builder().build() }
    }

    @Test func linearBuilderChecksShapesAndValues() throws {
        var ok = LinearModelBuilder(featureCount: 2, objective: .binaryLogistic(scale: 1))
        ok.addOutput(coefficients: [1, 2], intercept: 0)
        #expect(try ok.build().weights == [1, 2])
        var short = LinearModelBuilder(featureCount: 3, objective: .binaryLogistic(scale: 1))
        short.addOutput(coefficients: [1, 2], intercept: 0)
        #expect(throws: VigilError.self) { try short.build() }
        var nan = LinearModelBuilder(featureCount: 2, objective: .regression)
        nan.addOutput(coefficients: [1, .nan], intercept: 0)
        #expect(throws: VigilError.self) { try nan.build() }
    }
}
