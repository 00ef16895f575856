import Testing
@testable import VigilCore

/// The branch-free `FlatForest` kernels (blocked and per-row) against the one-row-at-a-time
/// walker reference, bit for bit, on random ensembles that use every missing-value rule, every
/// input precision, awkward values (NaN, ±0, values around 1e-35, ±∞, values equal to a
/// threshold), unbalanced trees, single-leaf trees, several outputs and averaging.
struct FlatForestTests {
    /// VigilCore's SplitMix64 stream, with the modulo `below` these cases were generated with.
    struct Rng {
        var base: SplitMix64
        init(state: UInt64) { base = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { base.next() }
        mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let specials: [Double] = [
        .nan, 0, -0.0, 1e-35, -1e-35, 1e-36, -1e-36, 1e-34, Double(Float(1e-35)), -Double(Float(1e-35)),
        .infinity, -.infinity, 0.5, -0.5, 1, 2.25,
    ]

    func value(_ g: inout Rng, thresholds: [Double]) -> Double {
        switch g.below(4) {
        case 0: return Self.specials[g.below(Self.specials.count)]
        case 1: return thresholds.isEmpty ? 0 : thresholds[g.below(thresholds.count)]
        default: return (g.unit() - 0.5) * 8
        }
    }

    /// A random tree of `leaves` leaves, grown by splitting a random leaf (unbalanced, like
    /// LightGBM's leaf-wise growth).
    func tree(_ g: inout Rng, leaves: Int, features: Int, thresholds: inout [Double]) -> [TreeNode] {
        var nodes: [TreeNode] = [.leaf((g.unit() - 0.5))]
        var leafIDs = [0]
        for _ in 1..<max(1, leaves) {
            let pick = g.below(leafIDs.count)
            let n = leafIDs.remove(at: pick)
            var t: Double
            switch g.below(8) {
            case 0: t = Self.specials[1 + g.below(Self.specials.count - 1)]  // never NaN
            default: t = ((g.unit() - 0.5) * 8 * 1000).rounded() / 1000
            }
            thresholds.append(t)
            let rule = MissingRule.allCases[g.below(3)]
            nodes[n] = TreeNode(
                value: t, feature: Int32(g.below(features)), left: Int32(nodes.count), right: Int32(nodes.count + 1),
                flags: NodeFlags(defaultLeft: g.below(2) == 0, missing: rule))
            leafIDs += [nodes.count, nodes.count + 1]
            nodes.append(.leaf(g.unit() - 0.5))
            nodes.append(.leaf(g.unit() - 0.5))
        }
        return nodes
    }

    /// A random ensemble and rows for it: `trees.base + below(trees.spread)` trees per output,
    /// each of `leaves(&g)` leaves (default: 1 in 6 single leaves, else 2 to 41), and 1 to
    /// `maxRows` rows (QuickScorerTests passes its own sizes).
    func ensemble(
        seed: UInt64, precision: InputPrecision, outputs: Int, divisor: Double, trees: (base: Int, spread: Int) = (5, 40),
        maxRows: Int = 300, leaves: ((inout Rng) -> Int)? = nil
    ) throws -> (TreeEnsemble, [Double]) {
        var g = Rng(state: seed)
        let features = 1 + g.below(7)
        let objective: Objective = outputs == 1 ? .binaryLogistic(scale: 1) : .multiclassSoftmax(classes: outputs)
        var b = TreeEnsembleBuilder(featureCount: features, objective: objective, inputPrecision: precision)
        b.baseMargin = (0..<outputs).map { _ in g.unit() - 0.5 }
        b.divisor = divisor
        var thresholds: [Double] = []
        for t in 0..<(outputs * (trees.base + g.below(trees.spread))) {
            let n = leaves?(&g) ?? (g.below(6) == 0 ? 1 : 2 + g.below(40))
            try b.addTree(nodes: tree(&g, leaves: n, features: features, thresholds: &thresholds), output: t % outputs)
        }
        let rows = 1 + g.below(maxRows)
        let x = (0..<(rows * features)).map { _ in value(&g, thresholds: thresholds) }
        return (try b.build(), x)
    }

    func margins(_ m: TreeEnsemble, _ x: [Double], kernel: (UnsafePointer<Double>, Int, UnsafeMutablePointer<Double>) -> Void, rowsPerCall: Int? = nil) -> [Double] {
        let rows = x.count / m.featureCount
        var out = [Double](repeating: .nan, count: rows * m.outputCount)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                let step = rowsPerCall ?? rows
                var r = 0
                while r < rows {
                    let n = min(step, rows - r)
                    kernel(xp.baseAddress! + r * m.featureCount, n, op.baseAddress! + r * m.outputCount)
                    r += n
                }
            }
        }
        return out
    }

    func bits(_ v: [Double]) -> [UInt64] { v.map(\.bitPattern) }

    @Test(arguments: [InputPrecision.double, .doubleFlushingTinyToZero, .float32])
    func flatKernelsEqualTheReferenceBitForBit(precision: InputPrecision) throws {
        for seed in UInt64(1)...40 {
            let outputs = seed % 4 == 0 ? 3 : 1
            let divisor = seed % 5 == 0 ? 7.0 : 1.0
            let (m, x) = try ensemble(seed: seed &* 7919 &+ UInt64(precision.rawValue), precision: precision, outputs: outputs, divisor: divisor)
            #expect(m.flat != nil)
            let reference = margins(m, x) { m.predictRawReference($0, rows: $1, into: $2) }
            let blocked = margins(m, x) { m.predictRaw($0, rows: $1, into: $2) }
            let single = margins(m, x, kernel: { m.predictRaw($0, rows: $1, into: $2) }, rowsPerCall: 1)
            let few = margins(m, x, kernel: { m.predictRaw($0, rows: $1, into: $2) }, rowsPerCall: FlatForest.blockedFrom - 1)
            let walker = margins(m, x) { m.predictRawWalker($0, rows: $1, into: $2) }
            #expect(bits(blocked) == bits(reference), "seed \(seed): blocked kernel")
            #expect(bits(single) == bits(reference), "seed \(seed): one row per call")
            #expect(bits(few) == bits(reference), "seed \(seed): \(FlatForest.blockedFrom - 1) rows per call")
            #expect(bits(walker) == bits(reference), "seed \(seed): walker kernel")
        }
    }

    @Test func categoricalEnsemblesHaveNoFlatLayout() throws {
        var b = TreeEnsembleBuilder(featureCount: 1, objective: .regression)
        let set = try b.addCategorySet(categories: [1, 3])
        try b.addTree(
            nodes: [TreeNode(value: Double(set), feature: 0, left: 1, right: 2, flags: NodeFlags(defaultLeft: false, missing: .defaultChild, categorical: true)),
                    .leaf(-1), .leaf(1)],
            output: 0)
        let m = try b.build()
        #expect(m.flat == nil)
        #expect(margins(m, [3, 2, .nan]) { m.predictRaw($0, rows: $1, into: $2) } == [-1, 1, 1])
    }
}
