import Testing
@testable import VigilCore

/// The `QuickScorer` kernel against the one-row-at-a-time walker reference, bit for bit, on the
/// random ensembles of `FlatForestTests` (every missing-value rule, every input precision, NaN,
/// ±0, values around 1e-35, ±∞, values equal to a threshold, unbalanced and single-leaf trees,
/// several outputs, averaging), on trees with exactly 32 and 64 leaves (the edges of the two
/// bitvector widths) and with more than 64 (no QuickScorer layout: the other kernels score it),
/// and on row counts that are not a multiple of the block.
struct QuickScorerTests {
    typealias Rng = FlatForestTests.Rng
    let forests = FlatForestTests()

    func ensemble(
        seed: UInt64, precision: InputPrecision, outputs: Int, divisor: Double, leaves: @escaping (inout Rng) -> Int
    ) throws -> (TreeEnsemble, [Double]) {
        try forests.ensemble(
            seed: seed, precision: precision, outputs: outputs, divisor: divisor, trees: (3, 30), maxRows: 200, leaves: leaves)
    }

    /// The QuickScorer kernel's margins, `rowsPerCall` rows per call.
    func quick(_ m: TreeEnsemble, _ q: QuickScorer, _ x: [Double], rowsPerCall: Int? = nil) -> [Double] {
        m.baseMargin.withUnsafeBufferPointer { bm in
            forests.margins(m, x, kernel: { x, rows, out in
                q.predict(x, rows: rows, into: out, precision: m.inputPrecision, baseMargin: bm.baseAddress!,
                          outputCount: m.outputCount, divisor: m.divisor)
            }, rowsPerCall: rowsPerCall)
        }
    }

    func layout(_ m: TreeEnsemble, treesPerChunk: Int? = nil) -> QuickScorer? {
        QuickScorer(nodes: m.nodes, roots: m.roots, treeOutput: m.treeOutput, featureCount: m.featureCount, treesPerChunk: treesPerChunk)
    }

    /// Leaves of the largest tree.
    func widest(_ m: TreeEnsemble) -> Int {
        m.roots.map { root in
            var leaves = 0
            var stack = [Int(root)]
            while let n = stack.popLast() {
                if m.nodes[n].isLeaf { leaves += 1 } else { stack += [Int(m.nodes[n].left), Int(m.nodes[n].right)] }
            }
            return leaves
        }.max() ?? 0
    }

    func check(_ m: TreeEnsemble, _ x: [Double], wide: Bool, _ label: String) {
        let reference = forests.margins(m, x) { m.predictRawReference($0, rows: $1, into: $2) }
        // `TreeEnsemble` keeps a layout only for trees of up to 32 leaves (routed by predictRaw).
        #expect((m.quick != nil) == (widest(m) <= 32), "\(label): layout kept by the ensemble")
        guard let q = layout(m) else {
            Issue.record("\(label): no QuickScorer layout")
            return
        }
        #expect(q.wide == wide, "\(label): bitvector width")
        #expect(forests.bits(quick(m, q, x)) == forests.bits(reference), "\(label): all rows in one call")
        // The generic list kernel too, where this CPU would take the AVX2 one (16-lane blocks).
        q.useAVX2 = false
        #expect(forests.bits(quick(m, q, x)) == forests.bits(reference), "\(label): all rows in one call, generic lists")
        q.useAVX2 = true
        #expect(forests.bits(quick(m, q, x, rowsPerCall: 1)) == forests.bits(reference), "\(label): one row per call")
        #expect(forests.bits(quick(m, q, x, rowsPerCall: q.lanes + 3)) == forests.bits(reference), "\(label): \(q.lanes + 3) rows per call")
        let routed = forests.margins(m, x) { m.predictRaw($0, rows: $1, into: $2) }
        #expect(forests.bits(routed) == forests.bits(reference), "\(label): predictRaw")
        // Trees in several chunks (real models need hundreds of trees for a second chunk).
        for chunk in [1, 7] {
            guard let c = layout(m, treesPerChunk: chunk) else {
                Issue.record("\(label): no QuickScorer layout with \(chunk) trees per chunk")
                continue
            }
            #expect(c.chunkCount == (m.treeCount + chunk - 1) / chunk)
            #expect(forests.bits(quick(m, c, x)) == forests.bits(reference), "\(label): \(chunk) trees per chunk")
        }
    }

    @Test(arguments: [InputPrecision.double, .doubleFlushingTinyToZero, .float32])
    func quickScorerEqualsTheReferenceBitForBit(precision: InputPrecision) throws {
        for seed in UInt64(1)...40 {
            let outputs = seed % 4 == 0 ? 3 : 1
            let divisor = seed % 5 == 0 ? 7.0 : 1.0
            // Up to 32 leaves: `UInt32` bitvectors.
            let (m, x) = try ensemble(seed: seed &* 104_729 &+ UInt64(precision.rawValue), precision: precision, outputs: outputs, divisor: divisor) { g in
                g.below(6) == 0 ? 1 : 2 + g.below(31)
            }
            check(m, x, wide: false, "seed \(seed), narrow")
            // Up to 64 leaves: `UInt64` bitvectors.
            let (w, wx) = try ensemble(seed: seed &* 7919 &+ 3 &+ UInt64(precision.rawValue), precision: precision, outputs: outputs, divisor: divisor) { g in
                g.below(6) == 0 ? 1 : 2 + g.below(63)
            }
            check(w, wx, wide: widest(w) > 32, "seed \(seed), wide")
        }
    }

    @Test(arguments: [InputPrecision.double, .doubleFlushingTinyToZero, .float32])
    func treesAtTheBitvectorWidthsEqualTheReference(precision: InputPrecision) throws {
        for seed in UInt64(1)...8 {
            let (m32, x32) = try ensemble(seed: seed &+ 500, precision: precision, outputs: 1, divisor: 1) { _ in 32 }
            check(m32, x32, wide: false, "seed \(seed), 32 leaves")
            let (m64, x64) = try ensemble(seed: seed &+ 600, precision: precision, outputs: seed % 2 == 0 ? 2 : 1, divisor: 1) { g in
                g.below(2) == 0 ? 64 : 33
            }
            check(m64, x64, wide: true, "seed \(seed), 33 and 64 leaves")
        }
    }

    @Test func treesWithMoreThan64LeavesFallBack() throws {
        for seed in UInt64(1)...6 {
            let (m, x) = try ensemble(seed: seed &+ 700, precision: .double, outputs: 1, divisor: 1) { g in
                g.below(3) == 0 ? 65 + g.below(40) : 2 + g.below(30)
            }
            #expect((widest(m) > 64) == (layout(m) == nil), "seed \(seed)")
            #expect((widest(m) > 32) == (m.quick == nil), "seed \(seed)")
            let reference = forests.margins(m, x) { m.predictRawReference($0, rows: $1, into: $2) }
            let routed = forests.margins(m, x) { m.predictRaw($0, rows: $1, into: $2) }
            #expect(forests.bits(routed) == forests.bits(reference), "seed \(seed)")
        }
    }

    /// A hand-made tree whose exit leaves are known: the masks and the lowest-set-bit rule.
    @Test func exitLeavesOfASmallTree() throws {
        // x0 <= 1 ? (x0 <= 0 ? A : B) : (x1 <= 5 ? C : D), NaN goes right (defaultChild).
        var b = TreeEnsembleBuilder(featureCount: 2, objective: .regression)
        let right = NodeFlags(defaultLeft: false, missing: .defaultChild)
        try b.addTree(
            nodes: [TreeNode(value: 1, feature: 0, left: 1, right: 2, flags: right),
                    TreeNode(value: 0, feature: 0, left: 3, right: 4, flags: right),
                    TreeNode(value: 5, feature: 1, left: 5, right: 6, flags: right),
                    .leaf(10), .leaf(20), .leaf(30), .leaf(40)],
            output: 0)
        let m = try b.build()
        let q = try #require(m.quick)
        let x: [Double] = [-1, 0, 0.5, 0, 1, 9, 2, 5, 2, 6, .nan, 0, 2, .nan, 0, .nan, -.infinity, .infinity]
        #expect(quick(m, q, x) == [10, 20, 20, 30, 40, 30, 40, 10, 10])
    }
}
