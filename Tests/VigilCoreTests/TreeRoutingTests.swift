import Testing
@testable import VigilCore

/// Hand-checkable routing of one split for every missing-value rule, categorical decoding and
/// input precision. Leaf values: left = -1, right = +1, so the margin says where a value went.
struct TreeRoutingTests {
    func stump(
        threshold: Double, flags: NodeFlags, precision: InputPrecision = .double,
        decoding: CategoryDecoding = .truncate, categories: [Int]? = nil
    ) throws -> TreeEnsemble {
        var b = TreeEnsembleBuilder(featureCount: 1, objective: .regression, inputPrecision: precision, categoryDecoding: decoding)
        var value = threshold
        if let categories { value = Double(try b.addCategorySet(categories: categories)) }
        try b.addTree(nodes: [TreeNode(value: value, feature: 0, left: 1, right: 2, flags: flags), .leaf(-1), .leaf(1)], output: 0)
        return try b.build()
    }

    func side(_ m: TreeEnsemble, _ x: Double) -> String {
        var out = 0.0
        [x].withUnsafeBufferPointer { xp in
            withUnsafeMutablePointer(to: &out) { m.predictRaw(xp.baseAddress!, rows: 1, into: $0) }
        }
        return out < 0 ? "L" : "R"
    }

    @Test func aValueEqualToTheThresholdGoesLeft() throws {
        let m = try stump(threshold: 0.5, flags: NodeFlags(defaultLeft: false, missing: .defaultChild))
        #expect(side(m, 0.5) == "L")
        #expect(side(m, 0.5.nextUp) == "R")
    }

    @Test func missingRuleAsZeroReadsNaNAsZero() throws {
        let below = try stump(threshold: 1, flags: NodeFlags(defaultLeft: false, missing: .asZero))
        let above = try stump(threshold: -1, flags: NodeFlags(defaultLeft: true, missing: .asZero))
        #expect(side(below, .nan) == "L")  // 0 <= 1
        #expect(side(above, .nan) == "R")  // 0 > -1, default direction ignored
    }

    @Test func missingRuleDefaultChildSendsOnlyNaNToTheDefault() throws {
        let m = try stump(threshold: 5, flags: NodeFlags(defaultLeft: false, missing: .defaultChild))
        #expect(side(m, .nan) == "R")
        #expect(side(m, 0) == "L")
    }

    @Test func missingRuleZeroOrNaNSendsZeroAndNaNToTheDefault() throws {
        let m = try stump(threshold: 5, flags: NodeFlags(defaultLeft: false, missing: .zeroOrNaNDefault))
        #expect(side(m, .nan) == "R")
        #expect(side(m, 0) == "R")
        #expect(side(m, 1e-36) == "R")  // |x| <= 1e-35 is zero
        #expect(side(m, 1e-30) == "L")
    }

    @Test func lightGBMFlushesTinyInputsToZero() throws {
        // Threshold exactly -kZeroThreshold: -kZeroThreshold itself is read as 0 and goes right.
        let z = InputPrecision.lightGBMZeroThreshold
        let m = try stump(threshold: -z, flags: NodeFlags(defaultLeft: true, missing: .asZero), precision: .doubleFlushingTinyToZero)
        #expect(side(m, -z) == "R")
        #expect(side(m, -z.nextUp.nextUp * 2) == "L")
    }

    @Test func float32InputsCompareAfterRounding() throws {
        // XGBoost: x < t in float32, stored as x <= t.nextDown.
        let t = Float(0.1)
        let m = try stump(threshold: Double(t.nextDown), flags: NodeFlags(defaultLeft: true, missing: .defaultChild), precision: .float32)
        #expect(side(m, Double(t)) == "R")  // 0.1f < 0.1f is false
        #expect(side(m, Double(t.nextDown)) == "L")
        #expect(side(m, 0.1) == "R")  // the double 0.1 rounds to 0.1f
    }

    @Test func categoricalMatchSideAndDecoding() throws {
        let lgb = try stump(threshold: 0, flags: NodeFlags(defaultLeft: false, missing: .defaultChild, categorical: true, categoryMatchGoesLeft: true),
                            decoding: .truncate, categories: [0, 3, 70])
        #expect(side(lgb, 3) == "L")
        #expect(side(lgb, 70) == "L")  // a set spanning three 32-bit words
        #expect(side(lgb, 4) == "R")
        #expect(side(lgb, -0.5) == "L")  // LightGBM truncates -0.5 to category 0
        #expect(side(lgb, -1) == "R")
        #expect(side(lgb, .nan) == "R")
        #expect(side(lgb, 1e10) == "R")
        let xgb = try stump(threshold: 0, flags: NodeFlags(defaultLeft: true, missing: .defaultChild, categorical: true, categoryMatchGoesLeft: false),
                            precision: .float32, decoding: .nonNegativeThenTruncate, categories: [0, 3])
        #expect(side(xgb, 3) == "R")
        #expect(side(xgb, 2) == "L")
        #expect(side(xgb, -0.5) == "L")  // XGBoost: negative is no category
        #expect(side(xgb, .nan) == "L")  // default child
    }
}
