/// A prediction-only copy of a `TreeEnsemble` for QuickScorer traversal (Lucchese et al.,
/// SIGIR 2015), vectorised over rows: instead of walking each tree node by node, every split
/// whose test fails for a row clears, in its tree's leaf bitvector, the leaves that the failed
/// test makes unreachable; the row's exit leaf is then the leftmost leaf still set. The work is
/// a stream of AND operations over sorted lists, with no data-dependent loads of tree nodes.
/// Built at load for every ensemble without categorical splits whose trees have at most 64
/// leaves; `TreeEnsemble.predictRaw` uses it for batches (see there for when).
///
/// Leaves. The leaves of each tree are numbered left to right (in order), bit `i` of a
/// bitvector standing for leaf `i` (`UInt32` bitvectors when every tree has at most 32 leaves,
/// `UInt64` otherwise). A split's mask has zeros exactly for the leaves of its left subtree:
/// those a row cannot reach once the split's test `v <= t` is false (the row goes right).
///
/// Columns. Each split tests one of `FlatForest`'s columns (see there): the column already
/// encodes the split's missing-value rule, so every test is `column value <= threshold`, a NaN
/// column value failing every test and -∞ passing every one. The splits of all trees that test
/// one column are listed by threshold, ascending; for a value `v` the failed tests are exactly
/// a prefix of that list: the splits with `t < v` (all of them for NaN). The prefix length is
/// found per row and column by binary search, so the inner loop compares no `Double`s.
///
/// Rows go through in blocks of `lanes`; a bitvector lane holds one row. Per column the list is
/// walked up to the longest prefix in the block: up to the shortest prefix every lane's test
/// failed and the mask is ANDed into all lanes; beyond it, only into the lanes whose prefix is
/// longer (the others are ORed with ones), in runs between consecutive prefix lengths.
///
/// Why this is right: a row reaches leaf `l` in a tree exactly when every split on the path to
/// `l` sends it towards `l`. Every leaf left of the exit leaf lies in the left subtree of a split
/// on the exit path that sent the row right (a failed test), so it is cleared; the exit leaf is
/// never cleared, since a failed split on its path has it on the right and a split off its path
/// has it outside its left subtree. Hence the exit leaf is the lowest set bit.
///
/// Numerical contract: the comparisons are `FlatForest`'s (hence `Walker.goesLeft`'s) on the
/// same `Double`s, so each row's leaf in each tree is the walker's; leaf values are summed per
/// row in tree order, in `Double` (or in `Float` from the base margin for
/// `InputPrecision.float32`), exactly as `predictRawReference` does, so results are
/// bit-identical.
package final class QuickScorer: @unchecked Sendable {
    /// Rows scored together: one lane of each bitvector, prefix and accumulator vector per row.
    static let lanes = 8

    /// A column that some split tests: the feature, how the value is read (`FlatForest`'s column
    /// `kind * F + feature`), its splits' range in `entryTree` and the masks, and where its
    /// thresholds start in `search`, `1 << levels` of them.
    struct Column {
        var feature: Int32
        var kind: Int32
        var start: Int32
        var count: Int32
        var searchStart: Int32
        var levels: Int32
    }

    let columns: UnsafeMutablePointer<Column>
    let columnCount: Int
    /// Per column, its splits' thresholds ascending, then +∞ up to the next power of two (at
    /// least one), so a search takes a fixed number of halving steps.
    let search: UnsafeMutablePointer<Double>
    /// Per split, grouped by column, each group by threshold ascending: the split's tree.
    let entryTree: UnsafeMutablePointer<UInt32>
    /// Per split, its mask: `UInt64`s when `wide`, else `UInt32`s.
    let masks: UnsafeMutableRawPointer
    let wide: Bool
    let entryCount: Int
    /// Per tree: where its leaves start in `leafValues`, and its output.
    let leafStart: UnsafeMutablePointer<Int32>
    let outputs: UnsafeMutablePointer<Int32>
    /// Leaf values, tree by tree, each tree's left to right; `leafValuesF` the same as `Float`.
    let leafValues: UnsafeMutablePointer<Double>
    let leafValuesF: UnsafeMutablePointer<Float>
    let treeCount: Int
    let featureCount: Int
    /// Whether some column reads the zero-as-missing views (kinds 2 and 3).
    let zeroAsMissing: Bool

    /// Most leaves a tree may have for this layout.
    static let maxLeaves = 64

    /// nil when the ensemble has a categorical split or a tree with more than `maxLeaves`
    /// leaves. The arguments are a checked ensemble's (`TreeEnsembleBuilder`): every node is
    /// reached exactly once from its root.
    init?(nodes src: [TreeNode], roots treeRoots: [Int32], treeOutput: [Int32], featureCount f: Int) {
        if src.contains(where: { !$0.isLeaf && $0.flags.isCategorical }) { return nil }
        let trees = treeRoots.count
        // Per tree, leaves left to right and each split's left-subtree leaf range: a pre-order
        // walk that visits left children first meets the leaves in order.
        struct Split { var column: Int; var threshold: Double; var tree: Int; var first: Int; var end: Int }
        var splits: [Split] = []
        var leafValueList: [Double] = []
        var starts: [Int32] = []
        var widest = 0
        var stack: [(node: Int, rightOf: Int)] = []
        for t in 0..<trees {
            starts.append(Int32(leafValueList.count))
            var leaves = 0
            stack.removeAll(keepingCapacity: true)
            stack.append((Int(treeRoots[t]), -1))
            while let (n, rightOf) = stack.popLast() {
                // The right child of split `rightOf` is met when its left subtree's leaves are done.
                if rightOf >= 0 { splits[rightOf].end = leaves }
                let node = src[n]
                if node.isLeaf {
                    leafValueList.append(node.value)
                    leaves += 1
                    continue
                }
                let column: Int
                switch node.flags.missingRule {
                case .defaultChild: column = node.flags.defaultLeft ? f + Int(node.feature) : Int(node.feature)
                case .asZero: column = 0 <= node.value ? f + Int(node.feature) : Int(node.feature)
                case .zeroOrNaNDefault: column = (node.flags.defaultLeft ? 3 : 2) * f + Int(node.feature)
                }
                splits.append(Split(column: column, threshold: node.value, tree: t, first: leaves, end: leaves))
                stack.append((Int(node.right), splits.count - 1))
                stack.append((Int(node.left), -1))
            }
            if leaves > Self.maxLeaves { return nil }
            widest = max(widest, leaves)
        }
        splits.sort { ($0.column, $0.threshold) < ($1.column, $1.threshold) }

        wide = widest > 32
        treeCount = trees
        featureCount = f
        entryCount = splits.count
        zeroAsMissing = splits.contains { $0.column >= 2 * f }
        entryTree = .allocate(capacity: max(1, splits.count))
        masks = .allocate(byteCount: max(1, splits.count) * 8, alignment: 8)
        leafStart = .allocate(capacity: max(1, trees))
        outputs = .allocate(capacity: max(1, trees))
        leafValues = .allocate(capacity: max(1, leafValueList.count))
        leafValuesF = .allocate(capacity: max(1, leafValueList.count))
        var columnList: [Column] = []
        for (i, s) in splits.enumerated() {
            entryTree[i] = UInt32(s.tree)
            // Ones everywhere but the left subtree's leaves [first, end) (at most 63 of them).
            let width = UInt64(s.end - s.first)
            let cleared = width == 0 ? 0 : (UInt64.max >> (64 - width)) << UInt64(s.first)
            if wide {
                masks.storeBytes(of: ~cleared, toByteOffset: i * 8, as: UInt64.self)
            } else {
                masks.storeBytes(of: UInt32(truncatingIfNeeded: ~cleared), toByteOffset: i * 4, as: UInt32.self)
            }
            if let last = columnList.last, Int(last.kind) * f + Int(last.feature) == s.column {
                columnList[columnList.count - 1].count += 1
            } else {
                columnList.append(Column(
                    feature: Int32(s.column % f), kind: Int32(s.column / f), start: Int32(i), count: 1,
                    searchStart: 0, levels: 0))
            }
        }
        var searchList: [Double] = []
        for a in columnList.indices {
            let first = Int(columnList[a].start)
            let count = Int(columnList[a].count)
            var levels = 0
            while 1 << levels < count + 1 { levels += 1 }
            columnList[a].searchStart = Int32(searchList.count)
            columnList[a].levels = Int32(levels)
            searchList += splits[first..<(first + count)].map(\.threshold)
            searchList += repeatElement(Double.infinity, count: (1 << levels) - count)
        }
        search = .allocate(capacity: max(1, searchList.count))
        search.initialize(from: searchList, count: searchList.count)
        columnCount = columnList.count
        columns = .allocate(capacity: max(1, columnList.count))
        columns.initialize(from: columnList, count: columnList.count)
        for t in 0..<trees {
            leafStart[t] = starts[t]
            outputs[t] = treeOutput[t]
        }
        for (i, v) in leafValueList.enumerated() {
            leafValues[i] = v
            leafValuesF[i] = Float(v)
        }
    }

    deinit {
        columns.deallocate()
        search.deallocate()
        entryTree.deallocate()
        masks.deallocate()
        leafStart.deallocate()
        outputs.deallocate()
        leafValues.deallocate()
        leafValuesF.deallocate()
    }

    /// Margins for `rows` rows, `rows x outputCount` into `out` (see `TreeEnsemble.predictRaw`).
    func predict(
        _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>,
        precision: InputPrecision, baseMargin: UnsafePointer<Double>, outputCount k: Int, divisor: Double
    ) {
        if wide {
            run(UInt64.self, x, rows: rows, into: out, precision: precision, baseMargin: baseMargin, outputCount: k, divisor: divisor)
        } else {
            run(UInt32.self, x, rows: rows, into: out, precision: precision, baseMargin: baseMargin, outputCount: k, divisor: divisor)
        }
    }

    /// The number of thresholds below `v` in a column's `search` run `th` of `1 << levels`
    /// (ascending, the last +∞); `missing` for NaN. The answer lies in [b, b + 2^s) before the
    /// step of size 2^s. The steps are unrolled, not a loop: in a loop the compiler turns the
    /// selects into branches, which mispredict about every other step.
    @inline(__always)
    static func failed(_ th: UnsafePointer<Double>, levels: Int, _ v: Double, missing: Int32) -> Int32 {
        if v.isNaN { return missing }
        var b = 0
        var s = levels
        while s > 12 {
            s &-= 1
            b &+= th[b &+ (1 &<< s) &- 1] < v ? 1 &<< s : 0
        }
        if s > 11 { b &+= th[b &+ 2047] < v ? 2048 : 0 }
        if s > 10 { b &+= th[b &+ 1023] < v ? 1024 : 0 }
        if s > 9 { b &+= th[b &+ 511] < v ? 512 : 0 }
        if s > 8 { b &+= th[b &+ 255] < v ? 256 : 0 }
        if s > 7 { b &+= th[b &+ 127] < v ? 128 : 0 }
        if s > 6 { b &+= th[b &+ 63] < v ? 64 : 0 }
        if s > 5 { b &+= th[b &+ 31] < v ? 32 : 0 }
        if s > 4 { b &+= th[b &+ 15] < v ? 16 : 0 }
        if s > 3 { b &+= th[b &+ 7] < v ? 8 : 0 }
        if s > 2 { b &+= th[b &+ 3] < v ? 4 : 0 }
        if s > 1 { b &+= th[b &+ 1] < v ? 2 : 0 }
        b &+= th[b] < v ? 1 : 0
        return Int32(truncatingIfNeeded: b)
    }

    private func run<M: FixedWidthInteger & UnsignedInteger & SIMDScalar>(
        _: M.Type, _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>,
        precision: InputPrecision, baseMargin: UnsafePointer<Double>, outputCount k: Int, divisor: Double
    ) {
        typealias Lanes = SIMD8<M>
        // Prefix lengths in the signed type of `M`'s width, so comparing them yields a mask for `Lanes`.
        typealias P = M.SIMDMaskScalar
        typealias Prefix = SIMD8<P>
        let width = Self.lanes
        let f = featureCount
        let trees = treeCount
        let columnCount = self.columnCount
        let canon = UnsafeMutablePointer<Double>.allocate(capacity: width * f)
        let prefix = UnsafeMutableRawPointer.allocate(
            byteCount: max(1, columnCount) * MemoryLayout<Prefix>.stride, alignment: MemoryLayout<Prefix>.alignment)
        let bits = UnsafeMutablePointer<Lanes>.allocate(capacity: max(1, trees))
        let accD = UnsafeMutablePointer<SIMD8<Double>>.allocate(capacity: k)
        let accF = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: k)
        defer {
            canon.deallocate(); prefix.deallocate(); bits.deallocate(); accD.deallocate(); accF.deallocate()
        }
        let masks = self.masks.assumingMemoryBound(to: M.self)
        let entryTree = self.entryTree
        let search = self.search
        let float32 = precision == .float32
        let z = InputPrecision.lightGBMZeroThreshold
        let zt = Walker.zeroThreshold
        var start = 0
        while start < rows {
            let bn = min(width, rows &- start)
            // The block's rows in `precision`; missing lanes repeat the first row.
            for i in 0..<width {
                let row = x + (start &+ (i < bn ? i : 0)) &* f
                for j in 0..<f {
                    var v = row[j]
                    switch precision {
                    case .double: break
                    case .doubleFlushingTinyToZero: v = (v >= -z && v <= z) ? 0 : v
                    case .float32: v = Double(Float(v))
                    }
                    canon[i &* f &+ j] = v
                }
            }
            // Per column and row: how many of the column's tests fail.
            for a in 0..<columnCount {
                let col = columns[a]
                let th = search + Int(col.searchStart)
                let levels = Int(col.levels)
                let n = Int32(col.count)
                let j = Int(col.feature)
                // Written lane by lane to memory and read back as a vector later: inserting
                // into a vector register goes through a store and a stalled reload per lane.
                let p = prefix + a &* MemoryLayout<Prefix>.stride
                for i in 0..<width {
                    let v = canon[i &* f &+ j]
                    let missing = col.kind >= 2 && (v.isNaN || (v >= -zt && v <= zt))
                    let c: Int32
                    switch col.kind {
                    case 0: c = Self.failed(th, levels: levels, v, missing: n)
                    case 1: c = Self.failed(th, levels: levels, v, missing: 0)
                    case 2: c = missing ? n : Self.failed(th, levels: levels, v, missing: n)
                    default: c = missing ? 0 : Self.failed(th, levels: levels, v, missing: 0)
                    }
                    p.storeBytes(of: P(truncatingIfNeeded: c), toByteOffset: i &* MemoryLayout<P>.stride, as: P.self)
                }
            }
            for t in 0..<trees { bits[t] = Lanes(repeating: M.max) }
            for a in 0..<columnCount {
                let base = Int(columns[a].start)
                let p = prefix.load(fromByteOffset: a &* MemoryLayout<Prefix>.stride, as: Prefix.self)
                let shortest = Int(p.min())
                let longest = Int(p.max())
                // Every lane's test fails.
                var e = base
                let allEnd = base &+ shortest
                while e < allEnd {
                    bits[Int(entryTree[e])] &= Lanes(repeating: masks[e])
                    e &+= 1
                }
                // Runs between consecutive prefix lengths: the lanes with a longer prefix fail.
                var done = P(truncatingIfNeeded: shortest)
                let last = P(truncatingIfNeeded: longest)
                while done < last {
                    // -1 in the lanes whose prefix ends by `done`, 0 in the others (arithmetic:
                    // the stdlib's lane comparisons go through memory one lane at a time).
                    let passed = (p &- Prefix(repeating: done &+ 1)) &>> Prefix(repeating: P(P.bitWidth &- 1))
                    let next = (p | (passed & Prefix(repeating: .max))).min()
                    let keep = unsafeBitCast(passed, to: Lanes.self)
                    let runEnd = base &+ Int(next)
                    while e < runEnd {
                        bits[Int(entryTree[e])] &= Lanes(repeating: masks[e]) | keep
                        e &+= 1
                    }
                    done = next
                }
            }
            // Exit leaves, summed in tree order.
            if float32 {
                for c in 0..<k { accF[c] = SIMD8<Float>(repeating: Float(baseMargin[c])) }
                for t in 0..<trees {
                    let b = bits[t]
                    let leaves = leafValuesF + Int(leafStart[t])
                    var v = SIMD8<Float>()
                    for i in 0..<width { v[i] = leaves[b[i].trailingZeroBitCount] }
                    accF[Int(outputs[t])] += v
                }
            } else {
                for c in 0..<k { accD[c] = SIMD8<Double>() }
                for t in 0..<trees {
                    let b = bits[t]
                    let leaves = leafValues + Int(leafStart[t])
                    var v = SIMD8<Double>()
                    for i in 0..<width { v[i] = leaves[b[i].trailingZeroBitCount] }
                    accD[Int(outputs[t])] += v
                }
            }
            for i in 0..<bn {
                let o = out + (start &+ i) &* k
                for c in 0..<k {
                    o[c] = float32 ? Double(accF[c][i]) : baseMargin[c] + accD[c][i] / divisor
                }
            }
            start &+= bn
        }
    }
}
