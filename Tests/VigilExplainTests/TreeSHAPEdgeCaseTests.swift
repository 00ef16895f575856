import Foundation
import Testing
import VigilCore
import VigilExplain
import VigilTesting

/// TreeSHAP on hand-checkable trees and on random ones against a brute-force Shapley sum over
/// every coalition of the path-dependent game, so that repeated features on a path, zero covers,
/// missing values, categorical splits, several outputs and averaging are covered independently
/// of the libraries' fixtures.
struct TreeSHAPEdgeCaseTests {
    static func explain(_ model: TreeEnsemble, _ x: [Double], rows: Int) throws -> [Double] {
        let e = try Explainer(model: .trees(model), means: nil)
        var out = [Double](repeating: .nan, count: rows * e.rowStride)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { e.explain(xp.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        return out
    }

    static let numeric = NodeFlags(defaultLeft: false, missing: .defaultChild)

    /// One stump: f0 <= 0.5 goes left (value -1, cover 30), else right (value 2, cover 70); NaN
    /// goes right. E = 0.3 · -1 + 0.7 · 2 = 1.1.
    static func stump(baseMargin: Double = 0) throws -> TreeEnsemble {
        var b = TreeEnsembleBuilder(featureCount: 2, objective: .binaryLogistic(scale: 1))
        b.baseMargin = [baseMargin]
        try b.addTree(
            nodes: [TreeNode(value: 0.5, feature: 0, left: 1, right: 2, flags: numeric), .leaf(-1), .leaf(2)],
            cover: [100, 30, 70], output: 0)
        return try b.build()
    }

    @Test func aStumpGivesItsFeatureTheLeafMinusTheMean() throws {
        let out = try Self.explain(try Self.stump(baseMargin: 0.25), [0, 7, .nan, 7, .nan, .nan], rows: 3)
        // Row 0 goes left, rows 1 and 2 (NaN) right; f1 is never split on.
        let expected: [Double] = [-2.1, 0, 1.35, 0.9, 0, 1.35, 0.9, 0, 1.35]
        #expect(maxAbsDifference(out, expected) <= 1e-15, "\(out)")
    }

    @Test func aSingleLeafTreeAddsOnlyToTheBase() throws {
        var b = TreeEnsembleBuilder(featureCount: 3, objective: .multiclassSoftmax(classes: 2))
        b.baseMargin = [0.5, -0.5]
        try b.addTree(nodes: [.leaf(0.75)], cover: [10], output: 0)
        try b.addTree(nodes: [.leaf(-2)], output: 1)  // no cover needed for a leaf
        let out = try Self.explain(try b.build(), [1, 2, 3], rows: 1)
        #expect(out == [0, 0, 0, 1.25, 0, 0, 0, -2.5])
    }

    @Test func splitsWithoutCoversAreRefusedNamingTheNode() throws {
        var b = TreeEnsembleBuilder(featureCount: 1, objective: .regression)
        try b.addTree(nodes: [.leaf(1)], output: 0)
        try b.addTree(nodes: [TreeNode(value: 0, feature: 0, left: 1, right: 2, flags: Self.numeric), .leaf(1), .leaf(2)], output: 0)
        #expect {
            _ = try Explainer(model: .trees(try b.build()), means: nil)
        } throws: { error in
            guard let e = error as? VigilError else { return false }
            return e.kind == .modelInvalid && e.message.contains("tree 1, node 0 has cover 0") && e.message.contains("records no covers")
        }
    }

    /// The all-missing rows of the fixtures (`e...-allnan`) follow every default direction; their
    /// contributions equal the library's like any other row (also checked by the conformance test).
    @Test(arguments: ["lightgbm/heart_binary", "lightgbm/missing_nan", "xgboost/heart_binary", "xgboost/default_left"])
    func anAllMissingRowEqualsTheLibrary(caseName: String) throws {
        let c = try TreeSHAPConformanceTests.load(caseName)
        let f = c.model.featureCount
        let row = try #require((0..<c.rows).first { r in (0..<f).allSatisfy { c.x[r * f + $0].isNaN } }, "\(caseName) has an all-missing row")
        let table = try FixtureTable(contentsOf: Fixtures.url(caseName).appendingPathComponent("contrib.csv"))
        let reference = table.rows[row].dropFirst().map { Double($0)! }
        let ours = Array(c.contributions[(row * c.explainer.rowStride)..<((row + 1) * c.explainer.rowStride)])
        #expect(maxAbsDifference(ours, reference) <= 1e-5)
        #expect(ours.dropLast().contains { $0 != 0 }, "missing values still earn contributions through their default directions")
    }

    // MARK: - Random trees against brute force

    typealias Generator = SplitMix64

    /// A random tree over `features` features: depth up to `maxDepth`, features repeating along
    /// paths, every missing rule, categorical splits (feature 0 only, sets over ids 0..<6), some
    /// zero-cover leaves. Covers are consistent (a split's cover is its children's sum).
    static func randomTree(
        _ g: inout Generator, features: Int, maxDepth: Int, categorySets: [Int]
    ) -> (nodes: [TreeNode], cover: [Double]) {
        var nodes: [TreeNode] = []
        var cover: [Double] = []
        func grow(_ depth: Int) -> Int {
            let i = nodes.count
            nodes.append(.leaf(0))
            cover.append(0)
            if depth == maxDepth || (depth > 0 && g.unit() < 0.25) {
                nodes[i] = .leaf((g.unit() - 0.5) * 4)
                cover[i] = g.unit() < 0.1 ? 0 : Double(1 + g.index(below: 50))
                return i
            }
            let feature = g.index(below: features)
            var node: TreeNode
            if feature == 0, !categorySets.isEmpty, g.unit() < 0.6 {
                let set = categorySets[g.index(below: categorySets.count)]
                node = TreeNode(value: Double(set), feature: 0, left: -1, right: -1, flags: NodeFlags(
                    defaultLeft: g.unit() < 0.5, missing: .defaultChild, categorical: true, categoryMatchGoesLeft: g.unit() < 0.5))
            } else {
                let rule = MissingRule.allCases[g.index(below: 3)]
                node = TreeNode(value: Double(g.index(below: 5)) - 2, feature: Int32(feature), left: -1, right: -1,
                                flags: NodeFlags(defaultLeft: g.unit() < 0.5, missing: rule))
            }
            let l = grow(depth + 1)
            let r = grow(depth + 1)
            node.left = Int32(l)
            node.right = Int32(r)
            nodes[i] = node
            cover[i] = cover[l] + cover[r]
            if cover[i] == 0 { cover[l] = 1; cover[i] = 1 }  // a split needs cover to share out
            return i
        }
        _ = grow(0)
        return (nodes, cover)
    }

    /// Exact Shapley values of v(S) = E[f | x_S] (path-dependent: an unknown feature's split
    /// averages its children by cover share) by summing over all 2^M coalitions.
    static func bruteForce(_ m: TreeEnsemble, row input: [Double]) -> [Double] {
        let f = m.featureCount, k = m.outputCount
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: f)
        defer { scratch.deallocate() }
        let row = input.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: m.canonicalRow($0.baseAddress!, scratch: scratch), count: f)) }
        func value(_ j: Int, _ known: Int) -> Double {
            let node = m.nodes[j]
            if node.isLeaf { return node.value }
            let l = Int(node.left), r = Int(node.right)
            if known & (1 << Int(node.feature)) != 0 {
                return value(m.goesLeft(node: j, value: row[Int(node.feature)]) ? l : r, known)
            }
            var v = 0.0
            if m.cover[l] != 0 { v += m.cover[l] / m.cover[j] * value(l, known) }
            if m.cover[r] != 0 { v += m.cover[r] / m.cover[j] * value(r, known) }
            return v
        }
        func v(_ output: Int, _ known: Int) -> Double {
            var s = 0.0
            for t in 0..<m.treeCount where Int(m.treeOutput[t]) == output { s += value(Int(m.roots[t]), known) }
            return s / m.divisor
        }
        func factorial(_ n: Int) -> Double { n <= 1 ? 1 : Double(n) * factorial(n - 1) }
        var out = [Double](repeating: 0, count: k * (f + 1))
        for c in 0..<k {
            var values = [Double](repeating: 0, count: 1 << f)
            for s in 0..<(1 << f) { values[s] = v(c, s) }
            for i in 0..<f {
                var phi = 0.0
                for s in 0..<(1 << f) where s & (1 << i) == 0 {
                    let size = s.nonzeroBitCount
                    phi += factorial(size) * factorial(f - size - 1) / factorial(f) * (values[s | (1 << i)] - values[s])
                }
                out[c * (f + 1) + i] = phi
            }
            out[c * (f + 1) + f] = m.baseMargin[c] + values[0]
        }
        return out
    }

    @Test(arguments: [
        (seed: UInt64(1), outputs: 1, divisor: 1.0, precision: InputPrecision.double),
        (seed: 2, outputs: 1, divisor: 1.0, precision: .doubleFlushingTinyToZero),
        (seed: 3, outputs: 3, divisor: 1.0, precision: .float32),
        (seed: 4, outputs: 1, divisor: 7.0, precision: .double),
        (seed: 5, outputs: 3, divisor: 4.0, precision: .double),
    ])
    func randomEnsemblesEqualBruteForceShapley(seed: UInt64, outputs: Int, divisor: Double, precision: InputPrecision) throws {
        var g = Generator(seed: seed)
        let f = 5
        let objective: Objective = outputs == 1 ? .binaryLogistic(scale: 1) : .multiclassSoftmax(classes: outputs)
        var b = TreeEnsembleBuilder(featureCount: f, objective: objective, inputPrecision: precision,
                                    categoryDecoding: seed % 2 == 0 ? .truncate : .nonNegativeThenTruncate)
        b.baseMargin = (0..<outputs).map { Double($0) - 0.3 }
        b.divisor = divisor
        let sets = try [[0, 2], [1, 3, 5], [4]].map { try b.addCategorySet(categories: $0) }
        for t in 0..<(outputs * 7) {
            let tree = Self.randomTree(&g, features: f, maxDepth: t % 7 == 0 ? 0 : 1 + g.index(below: 7), categorySets: sets)
            try b.addTree(nodes: tree.nodes, cover: tree.cover, output: t % outputs)
        }
        let model = try b.build()
        let specials: [Double] = [.nan, 0, -0.0, 1e-36, -2, -1, 0.5, 1, 2, 3, 5, 1000]
        var x: [Double] = []
        let rows = 40
        for r in 0..<rows {
            for _ in 0..<f {
                x.append(r == 0 ? .nan : (g.unit() < 0.5 ? specials[g.index(below: specials.count)] : (g.unit() - 0.5) * 8))
            }
        }
        let ours = try Self.explain(model, x, rows: rows)
        let stride = outputs * (f + 1)
        var margins = [Double](repeating: 0, count: rows * outputs)
        x.withUnsafeBufferPointer { xp in margins.withUnsafeMutableBufferPointer { model.predictRaw(xp.baseAddress!, rows: rows, into: $0.baseAddress!) } }
        for r in 0..<rows {
            let reference = Self.bruteForce(model, row: Array(x[(r * f)..<((r + 1) * f)]))
            let mine = Array(ours[(r * stride)..<((r + 1) * stride)])
            #expect(maxAbsDifference(mine, reference) <= 1e-12, "row \(r): \(mine) vs \(reference)")
            for c in 0..<outputs {
                let sum = mine[(c * (f + 1))..<((c + 1) * (f + 1))].reduce(0, +)
                #expect(abs(sum - margins[r * outputs + c]) <= 1e-5, "row \(r), output \(c): additivity")
            }
        }
    }
}
