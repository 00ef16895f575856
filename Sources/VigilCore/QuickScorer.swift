internal import VigilKernels
internal import VigilKernelsAVX2

/// A prediction-only copy of a `TreeEnsemble` for QuickScorer traversal (Lucchese et al.,
/// SIGIR 2015), vectorised over rows: instead of walking each tree node by node, every split
/// whose test fails for a row clears, in its tree's leaf bitvector, the leaves that the failed
/// test makes unreachable; the row's exit leaf is then the leftmost leaf still set. The work is
/// a stream of AND operations over sorted lists, with no data-dependent loads of tree nodes.
/// `TreeEnsemble` builds it at load for every ensemble without categorical splits whose trees
/// have at most 32 leaves and uses it for batches (see `TreeEnsemble.predictRaw`); the kernel
/// also takes trees of up to 64 leaves, but measured slower than `FlatForest` there.
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
/// a prefix of that list: the splits with `t < v` (all of them for NaN). The two columns of a
/// feature that differ only in where NaN goes (`f`, `F + f`; likewise `2F + f`, `3F + f`) hold
/// the same value for every row that is not missing to them, so their splits share one list;
/// a row with a missing value fails no split of that list, and then fails the splits of the
/// column that reads it as NaN, listed again for those rows. The prefix length is found once
/// per row and feature: a binary search among the unique thresholds of all the feature's
/// splits gives the value's rank, and a table per list turns the rank into the list's prefix
/// length. The inner loop compares no `Double`s.
///
/// Rows go through in blocks of `lanes`; a bitvector lane holds one row. Per column the list is
/// walked up to the longest prefix in the block: up to the shortest prefix every lane's test
/// failed and the mask is ANDed into all lanes; beyond it, only into the lanes whose prefix is
/// longer (the others are ORed with ones), in runs between consecutive prefix lengths. Trees
/// are taken in chunks (each with its own lists) small enough that the chunk's bitvectors
/// stay in L1 while its lists stream past.
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
    /// A feature that some split tests: the unique thresholds of all its splits, ascending,
    /// padded with +∞ to `1 << levels` (at least one +∞), from `searchStart` in `search`.
    struct Feature {
        var feature: Int32
        var searchStart: Int32
        var levels: Int32
        var unique: Int32
    }

    /// The splits of one chunk of trees on one feature whose rule reads NaN as missing
    /// (`family` 0: `FlatForest`'s columns `f` and `F + f`) or NaN and zero (`family` 1: columns
    /// `2F + f` and `3F + f`). For a value that is not missing to them both columns hold the
    /// value itself, so their splits make one list: its range in `entrySlot` and the masks,
    /// and its prefix table from `tableStart` in `tables`: entry `r` (the number of the
    /// feature's unique thresholds below a value) is the number of the list's splits that
    /// fail, then a 0 for missing values. A missing value fails every split of the column that
    /// reads it as NaN (`f`, `2F + f`) and none of the other's: those splits are listed again
    /// from `missStart`, for the rows with a missing value.
    struct Column {
        var featureIndex: Int32
        var family: Int32
        var start: Int32
        var count: Int32
        var tableStart: Int32
        var missStart: Int32
        var missCount: Int32
    }

    /// Rows scored together: a bitvector lane, prefix lane and accumulator lane per row.
    /// `UInt32` bitvectors: 16 lanes; `UInt64`: 8.
    let lanes: Int
    /// Trees per chunk: the chunk's bitvectors for a block (`treesPerChunk * lanes` masks) take
    /// at most `bitsBudget` bytes, about L1's size, while the chunk's split lists stream past.
    /// Every chunk pays the per-list work again: 16 KiB (two chunks for lgb500's 500 trees)
    /// measured 303k rows/s against 376k with one chunk.
    let treesPerChunk: Int
    static let bitsBudget = 32 * 1024

    let features: UnsafeMutablePointer<Feature>
    let featureListCount: Int
    let search: UnsafeMutablePointer<Double>
    let columns: UnsafeMutablePointer<Column>
    /// Per chunk `c`, its columns are `columns[chunkColumns[c]..<chunkColumns[c + 1]]`.
    let chunkColumns: UnsafeMutablePointer<Int32>
    let chunkCount: Int
    let tables: UnsafeMutablePointer<Int32>
    /// Per entry (the splits grouped by chunk, then list (`Column`), each list by threshold
    /// ascending; then each list's NaN-failing splits again, from its `missStart`): the byte
    /// offset of its tree's bitvectors in a block's scratch (the tree relative to its chunk's
    /// first tree, times `lanes` masks).
    let entrySlot: UnsafeMutablePointer<UInt32>
    /// Per entry, its split's mask: `UInt64`s when `wide`, else `UInt32`s.
    let masks: UnsafeMutableRawPointer
    let wide: Bool
    /// Per tree: where its leaves start in `leafValues`, and its output.
    let leafStart: UnsafeMutablePointer<Int32>
    let outputs: UnsafeMutablePointer<Int32>
    /// Leaf values, tree by tree, each tree's left to right; `leafValuesF` the same as `Float`.
    let leafValues: UnsafeMutablePointer<Double>
    let leafValuesF: UnsafeMutablePointer<Float>
    let treeCount: Int
    let featureCount: Int
    /// Whether some column reads zero as missing (kinds 2 and 3).
    let zeroKinds: Bool
    /// Whether 16-lane blocks take the AVX2 list kernel on CPUs that have it (tests turn it off
    /// to run the generic kernel too).
    var useAVX2 = true

    /// Up to this many rows of a block with a missing value go through a list's NaN-failing
    /// splits one lane at a time; more, all lanes at once.
    static let scalarMissingLanes = 3

    /// Most leaves a tree may have for this layout.
    static let maxLeaves = 64

    /// nil when the ensemble has a categorical split or a tree with more than `leafLimit`
    /// (at most `maxLeaves`) leaves. The arguments are a checked ensemble's
    /// (`TreeEnsembleBuilder`): every node is reached exactly once from its root.
    /// `treesPerChunk` overrides the chunk size (tests).
    init?(
        nodes src: [TreeNode], roots treeRoots: [Int32], treeOutput: [Int32], featureCount f: Int,
        leafLimit: Int = QuickScorer.maxLeaves, treesPerChunk chunk: Int? = nil
    ) {
        if src.contains(where: { !$0.isLeaf && $0.flags.isCategorical }) { return nil }
        let trees = treeRoots.count
        // Per tree, leaves left to right and each split's left-subtree leaf range: a pre-order
        // walk that visits left children first meets the leaves in order.
        struct Split { var feature: Int; var kind: Int; var threshold: Double; var tree: Int; var first: Int; var end: Int }
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
                let kind: Int
                switch node.flags.missingRule {
                case .defaultChild: kind = node.flags.defaultLeft ? 1 : 0
                case .asZero: kind = 0 <= node.value ? 1 : 0
                case .zeroOrNaNDefault: kind = node.flags.defaultLeft ? 3 : 2
                }
                splits.append(Split(feature: Int(node.feature), kind: kind, threshold: node.value, tree: t, first: leaves, end: leaves))
                stack.append((Int(node.right), splits.count - 1))
                stack.append((Int(node.left), -1))
            }
            if leaves > min(leafLimit, Self.maxLeaves) { return nil }
            widest = max(widest, leaves)
        }
        let isWide = widest > 32
        let laneCount = isWide ? 8 : 16
        // Bytes of one tree's bitvectors in a block.
        let slotBytes = laneCount * (isWide ? 8 : 4)
        wide = isWide
        lanes = laneCount
        let perChunk = max(1, chunk ?? Self.bitsBudget / slotBytes)
        treesPerChunk = perChunk
        treeCount = trees
        featureCount = f
        zeroKinds = splits.contains { $0.kind >= 2 }
        chunkCount = max(1, (trees + treesPerChunk - 1) / treesPerChunk)

        // Per feature, its unique thresholds.
        var byFeature = [[Double]](repeating: [], count: f)
        for s in splits { byFeature[s.feature].append(s.threshold) }
        var featureList: [Feature] = []
        var featureIndex = [Int](repeating: -1, count: f)
        var uniques: [[Double]] = []
        var searchList: [Double] = []
        for j in 0..<f where !byFeature[j].isEmpty {
            var u = byFeature[j].sorted()
            var w = 0
            for v in u where w == 0 || u[w - 1] != v {
                u[w] = v
                w += 1
            }
            u.removeLast(u.count - w)
            var levels = 0
            while 1 << levels < u.count + 1 { levels += 1 }
            featureIndex[j] = featureList.count
            featureList.append(Feature(feature: Int32(j), searchStart: Int32(searchList.count), levels: Int32(levels), unique: Int32(u.count)))
            searchList += u
            searchList += repeatElement(Double.infinity, count: (1 << levels) - u.count)
            uniques.append(u)
        }

        splits.sort { a, b in
            (a.tree / perChunk, a.feature, a.kind / 2, a.threshold) < (b.tree / perChunk, b.feature, b.kind / 2, b.threshold)
        }
        // The splits of kinds 0 and 2 (those that fail for a missing value) are listed twice.
        let entryCount = splits.count + splits.reduce(0) { $0 + ($1.kind % 2 == 0 ? 1 : 0) }
        let slotList = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, entryCount))
        let maskList = UnsafeMutableRawPointer.allocate(byteCount: max(1, entryCount) * 8, alignment: 8)
        entrySlot = slotList
        masks = maskList
        var missEntry = splits.count
        func setEntry(_ e: Int, _ s: Split) {
            slotList[e] = UInt32((s.tree % perChunk) * slotBytes)
            // Ones everywhere but the left subtree's leaves [first, end) (at most 63 of them).
            let width = UInt64(s.end - s.first)
            let cleared = width == 0 ? 0 : (UInt64.max >> (64 - width)) << UInt64(s.first)
            if isWide {
                maskList.storeBytes(of: ~cleared, toByteOffset: e * 8, as: UInt64.self)
            } else {
                maskList.storeBytes(of: UInt32(truncatingIfNeeded: ~cleared), toByteOffset: e * 4, as: UInt32.self)
            }
        }
        var columnList: [Column] = []
        var chunkStarts: [Int32] = []
        var tableList: [Int32] = []
        var i = 0
        for c in 0..<chunkCount {
            chunkStarts.append(Int32(columnList.count))
            while i < splits.count, splits[i].tree / treesPerChunk == c {
                let (feature, family) = (splits[i].feature, splits[i].kind / 2)
                let fi = featureIndex[feature]
                let u = uniques[fi]
                var column = Column(
                    featureIndex: Int32(fi), family: Int32(family), start: Int32(i), count: 0,
                    tableStart: Int32(tableList.count), missStart: 0, missCount: 0)
                var thresholds: [Double] = []
                var missing: [Split] = []
                while i < splits.count, splits[i].tree / treesPerChunk == c, splits[i].feature == feature, splits[i].kind / 2 == family {
                    let s = splits[i]
                    setEntry(i, s)
                    if s.kind % 2 == 0 { missing.append(s) }
                    thresholds.append(s.threshold)
                    i += 1
                }
                column.count = Int32(thresholds.count)
                column.missStart = Int32(missEntry)
                column.missCount = Int32(missing.count)
                for s in missing {
                    setEntry(missEntry, s)
                    missEntry += 1
                }
                // Entry r: the splits whose threshold is one of u[0..<r], i.e. below every value
                // with r unique thresholds below it (all of them for r = u.count).
                var failing = 0
                for r in 0...u.count {
                    while failing < thresholds.count, r == u.count || thresholds[failing] < u[r] { failing += 1 }
                    tableList.append(Int32(failing))
                }
                tableList.append(0)
                columnList.append(column)
            }
        }
        chunkStarts.append(Int32(columnList.count))
        features = .allocate(capacity: max(1, featureList.count))
        features.initialize(from: featureList, count: featureList.count)
        featureListCount = featureList.count
        search = .allocate(capacity: max(1, searchList.count))
        search.initialize(from: searchList, count: searchList.count)
        columns = .allocate(capacity: max(1, columnList.count))
        columns.initialize(from: columnList, count: columnList.count)
        chunkColumns = .allocate(capacity: chunkStarts.count)
        chunkColumns.initialize(from: chunkStarts, count: chunkStarts.count)
        tables = .allocate(capacity: max(1, tableList.count))
        tables.initialize(from: tableList, count: tableList.count)
        leafStart = .allocate(capacity: max(1, trees))
        outputs = .allocate(capacity: max(1, trees))
        leafValues = .allocate(capacity: max(1, leafValueList.count))
        leafValuesF = .allocate(capacity: max(1, leafValueList.count))
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
        features.deallocate()
        search.deallocate()
        columns.deallocate()
        chunkColumns.deallocate()
        tables.deallocate()
        entrySlot.deallocate()
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
            run(SIMD8<UInt64>.self, SIMD8<Double>.self, SIMD8<Float>.self, x, rows: rows, into: out,
                precision: precision, baseMargin: baseMargin, outputCount: k, divisor: divisor)
        } else {
            run(SIMD16<UInt32>.self, SIMD16<Double>.self, SIMD16<Float>.self, x, rows: rows, into: out,
                precision: precision, baseMargin: baseMargin, outputCount: k, divisor: divisor)
        }
    }

    /// The kernel for bitvectors `V` (a lane per row), with accumulators `DV` and `FV` of as many
    /// lanes.
    private func run<V: SIMD, DV: SIMD, FV: SIMD>(
        _: V.Type, _: DV.Type, _: FV.Type, _ x: UnsafePointer<Double>, rows: Int, into out: UnsafeMutablePointer<Double>,
        precision: InputPrecision, baseMargin: UnsafePointer<Double>, outputCount k: Int, divisor: Double
    ) where V.Scalar: FixedWidthInteger & UnsignedInteger, DV.Scalar == Double, FV.Scalar == Float {
        typealias M = V.Scalar
        // Prefix lengths in the signed integers of `M`'s width, so that they turn into lane masks.
        typealias PV = V.MaskStorage
        typealias P = PV.Scalar
        let width = V.scalarCount
        let f = featureCount
        let featureListCount = self.featureListCount
        var longestList = 0
        for a in 0..<Int(chunkColumns[chunkCount]) { longestList = max(longestList, Int(columns[a].count)) }
        // The block's values feature by feature (`canon[j * width + i]`), and per row the
        // position of its binary search.
        let canon = UnsafeMutablePointer<Double>.allocate(capacity: width * f)
        let at = UnsafeMutablePointer<Int>.allocate(capacity: width)
        // Per feature, family and row: the index into a column's table (see `Column`); per
        // feature and family, the rows (a bit each) whose value is missing to the family.
        let ranks = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, featureListCount * 2 * width))
        let missingLanes = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, featureListCount * 2))
        // Per column and block, the distinct prefix lengths: a bit per length in `ends`, and in
        // `endingLanes[length]` the lanes (a bit each) whose prefix has that length. Both are
        // all zeros between columns.
        let ends = UnsafeMutablePointer<UInt64>.allocate(capacity: longestList / 64 + 1)
        ends.initialize(repeating: 0, count: longestList / 64 + 1)
        let endingLanes = UnsafeMutablePointer<UInt32>.allocate(capacity: longestList + 1)
        endingLanes.initialize(repeating: 0, count: longestList + 1)
        // Lane i: 1 << i, to turn a bit per lane into a mask per lane.
        var laneBit = PV()
        for i in 0..<width { laneBit[i] = P(truncatingIfNeeded: 1 &<< i) }
        let signShift = PV(repeating: P(P.bitWidth &- 1))
        // Page-aligned: where the heap happened to place this buffer moved lgb500's batch rate
        // by 13% (about 425k rows/s after a few single-row calls, 365k after 5,000 of them,
        // with the same code), and a page-aligned one gave the higher figure every time.
        let bits = UnsafeMutableRawPointer.allocate(byteCount: treesPerChunk &* MemoryLayout<V>.stride, alignment: 4096)
            .bindMemory(to: V.self, capacity: treesPerChunk)
        let accD = UnsafeMutablePointer<DV>.allocate(capacity: k)
        let accF = UnsafeMutablePointer<FV>.allocate(capacity: k)
        defer {
            canon.deallocate(); at.deallocate(); ranks.deallocate(); missingLanes.deallocate(); ends.deallocate(); endingLanes.deallocate(); UnsafeMutableRawPointer(bits).deallocate()
            accD.deallocate(); accF.deallocate()
        }
        let masks = self.masks.assumingMemoryBound(to: M.self)
        // 16 lanes of UInt32 on a CPU with AVX2: each list goes through the same steps compiled
        // for AVX2 (VigilKernelsAVX2/QuickScorerColumn.swift).
        let avx2 = V.self == SIMD16<UInt32>.self && CPU.supportsAVX2Kernels && useAVX2
        let masks32 = UnsafePointer(self.masks.assumingMemoryBound(to: UInt32.self))
        let entrySlot = self.entrySlot
        let slots = UnsafeMutableRawPointer(bits)
        let float32 = precision == .float32
        let z = InputPrecision.lightGBMZeroThreshold
        let zt = Walker.zeroThreshold
        let zeroKinds = self.zeroKinds
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
                    canon[j &* width &+ i] = v
                }
            }
            // Per feature and row: the rank of the value among the feature's thresholds, or the
            // tables' last entry (0) where the value is missing to the family, plus a bit per
            // such row.
            for fi in 0..<featureListCount {
                let fe = features[fi]
                let th = search + Int(fe.searchStart)
                let levels = Int(fe.levels)
                let missingEntry = fe.unique &+ 1
                let j = Int(fe.feature)
                let e = ranks + fi &* 2 &* width
                let values = canon + j &* width
                // Binary searches, eight rows stepping together so that their loads overlap
                // instead of each row waiting on its own chain of loads (the last levels mostly
                // miss L1). A row's answer lies in [a, a + 2^s) before the step of size 2^s
                // (NaN compares false: 0). Shifts, not selects: the compiler turns selects in
                // loops into branches, which mispredict about every other step.
                var i = 0
                while i < width {
                    let v0 = values[i], v1 = values[i &+ 1], v2 = values[i &+ 2], v3 = values[i &+ 3]
                    let v4 = values[i &+ 4], v5 = values[i &+ 5], v6 = values[i &+ 6], v7 = values[i &+ 7]
                    var a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0
                    var level = levels
                    while level > 0 {
                        level &-= 1
                        let probe = th + ((1 &<< level) &- 1)
                        a0 &+= (probe[a0] < v0 ? 1 : 0) &<< level
                        a1 &+= (probe[a1] < v1 ? 1 : 0) &<< level
                        a2 &+= (probe[a2] < v2 ? 1 : 0) &<< level
                        a3 &+= (probe[a3] < v3 ? 1 : 0) &<< level
                        a4 &+= (probe[a4] < v4 ? 1 : 0) &<< level
                        a5 &+= (probe[a5] < v5 ? 1 : 0) &<< level
                        a6 &+= (probe[a6] < v6 ? 1 : 0) &<< level
                        a7 &+= (probe[a7] < v7 ? 1 : 0) &<< level
                    }
                    at[i] = a0; at[i &+ 1] = a1; at[i &+ 2] = a2; at[i &+ 3] = a3
                    at[i &+ 4] = a4; at[i &+ 5] = a5; at[i &+ 6] = a6; at[i &+ 7] = a7
                    i &+= 8
                }
                var nanLanes: UInt32 = 0
                var zeroLanes: UInt32 = 0
                for i in 0..<width {
                    let v = values[i]
                    let nan = v.isNaN
                    let zero = nan || (v >= -zt && v <= zt)
                    let r = Int32(truncatingIfNeeded: at[i])
                    e[i] = nan ? missingEntry : r
                    nanLanes |= (nan ? 1 : 0) &<< UInt32(i)
                    if zeroKinds {
                        e[width &+ i] = zero ? missingEntry : r
                        zeroLanes |= (zero ? 1 : 0) &<< UInt32(i)
                    }
                }
                missingLanes[fi &* 2] = nanLanes
                missingLanes[fi &* 2 &+ 1] = zeroLanes
            }
            if float32 {
                for c in 0..<k { accF[c] = FV(repeating: Float(baseMargin[c])) }
            } else {
                for c in 0..<k { accD[c] = DV() }
            }
            for chunk in 0..<chunkCount {
                let firstTree = chunk &* treesPerChunk
                let chunkTrees = min(treesPerChunk, treeCount &- firstTree)
                let firstColumn = Int(chunkColumns[chunk])
                let columnCount = Int(chunkColumns[chunk &+ 1]) &- firstColumn
                for t in 0..<chunkTrees { bits[t] = V(repeating: M.max) }
                for a in 0..<columnCount {
                    let col = columns[firstColumn &+ a]
                    let base = Int(col.start)
                    // Per row: how many of the column's tests fail.
                    let table = tables + Int(col.tableStart)
                    let group = Int(col.featureIndex) &* 2 &+ Int(col.family)
                    let rowRanks = ranks + group &* width
                    if avx2 {
                        QuickScorerColumn.apply16(
                            bits: slots, entrySlot: entrySlot, masks: masks32, start: base, count: Int(col.count),
                            table: table, rowRanks: rowRanks, missStart: Int(col.missStart), missCount: Int(col.missCount),
                            missingLanes: missingLanes[group], scalarMissingLanes: Self.scalarMissingLanes, ends: ends,
                            endingLanes: endingLanes)
                        continue
                    }
                    var shortest = Int(col.count)
                    var longest = 0
                    for i in 0..<width {
                        let q = Int(table[Int(rowRanks[i])])
                        shortest = min(shortest, q)
                        longest = max(longest, q)
                        ends[q &>> 6] |= 1 &<< UInt64(q & 63)
                        endingLanes[q] |= 1 &<< UInt32(i)
                    }
                    // Every lane's test fails.
                    var e = base
                    let allEnd = base &+ shortest
                    while e < allEnd {
                        let slot = slots + Int(entrySlot[e])
                        slot.storeBytes(of: slot.load(as: V.self) & V(repeating: masks[e]), as: V.self)
                        e &+= 1
                    }
                    // Runs between consecutive prefix lengths: the lanes with a longer prefix fail.
                    var done = shortest
                    var passedLanes: UInt32 = 0
                    while true {
                        passedLanes |= endingLanes[done]
                        endingLanes[done] = 0
                        ends[done &>> 6] &= ~(1 &<< UInt64(done & 63))
                        if done == longest { break }
                        // The next length: the lowest bit left (those below are cleared).
                        var w = done &>> 6
                        while ends[w] == 0 { w &+= 1 }
                        let next = w &<< 6 &+ ends[w].trailingZeroBitCount
                        // -1 in the lanes whose bit is set in `passedLanes`, 0 in the others
                        // (arithmetic: the stdlib's lane comparisons go one lane at a time).
                        let other = PV(repeating: P(truncatingIfNeeded: ~passedLanes)) & laneBit
                        let keep = unsafeBitCast((other &- PV(repeating: 1)) &>> signShift, to: V.self)
                        let runEnd = base &+ next
                        while e < runEnd {
                            let slot = slots + Int(entrySlot[e])
                            slot.storeBytes(of: slot.load(as: V.self) & (V(repeating: masks[e]) | keep), as: V.self)
                            e &+= 1
                        }
                        done = next
                    }
                    // Rows with a missing value: the splits that read it as NaN fail. Usually one
                    // row or two of a block: their lanes alone, one mask each, costs less than
                    // the whole bitvectors per split.
                    let missing = missingLanes[group]
                    if missing != 0, col.missCount > 0, missing.nonzeroBitCount <= Self.scalarMissingLanes {
                        var left = missing
                        let missEnd = Int(col.missStart) &+ Int(col.missCount)
                        while left != 0 {
                            let lane = slots + left.trailingZeroBitCount &* MemoryLayout<M>.stride
                            left &= left &- 1
                            var m = Int(col.missStart)
                            while m < missEnd {
                                let slot = lane + Int(entrySlot[m])
                                slot.storeBytes(of: slot.load(as: M.self) & masks[m], as: M.self)
                                m &+= 1
                            }
                        }
                    } else if missing != 0, col.missCount > 0 {
                        let other = PV(repeating: P(truncatingIfNeeded: missing)) & laneBit
                        let keep = unsafeBitCast((other &- PV(repeating: 1)) &>> signShift, to: V.self)
                        var m = Int(col.missStart)
                        let missEnd = m &+ Int(col.missCount)
                        while m < missEnd {
                            let slot = slots + Int(entrySlot[m])
                            slot.storeBytes(of: slot.load(as: V.self) & (V(repeating: masks[m]) | keep), as: V.self)
                            m &+= 1
                        }
                    }
                }
                // Exit leaves, summed in tree order.
                if avx2 {
                    if float32 {
                        QuickScorerColumn.exitLeaves16(
                            bits: slots, trees: chunkTrees, firstTree: firstTree, leafStart: leafStart, outputs: outputs,
                            leafValues: leafValuesF, acc: UnsafeMutableRawPointer(accF).assumingMemoryBound(to: SIMD16<Float>.self))
                    } else {
                        QuickScorerColumn.exitLeaves16(
                            bits: slots, trees: chunkTrees, firstTree: firstTree, leafStart: leafStart, outputs: outputs,
                            leafValues: leafValues, acc: UnsafeMutableRawPointer(accD).assumingMemoryBound(to: SIMD16<Double>.self))
                    }
                } else if float32 {
                    sumExitLeaves(bits, trees: chunkTrees, firstTree: firstTree, leafValues: leafValuesF, into: accF)
                } else {
                    sumExitLeaves(bits, trees: chunkTrees, firstTree: firstTree, leafValues: leafValues, into: accD)
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

    /// Exit leaves of a chunk's trees for a block, summed per row in tree order into the
    /// accumulator of each tree's output: lane i's leaf is the lowest set bit of its bitvector.
    @inline(__always)
    private func sumExitLeaves<V: SIMD, A: SIMD>(
        _ bits: UnsafeMutablePointer<V>, trees: Int, firstTree: Int, leafValues: UnsafeMutablePointer<A.Scalar>,
        into acc: UnsafeMutablePointer<A>
    ) where V.Scalar: FixedWidthInteger, A.Scalar: FloatingPoint {
        for t in 0..<trees {
            let b = bits[t]
            let leaves = leafValues + Int(leafStart[firstTree &+ t])
            var v = A()
            for i in 0..<V.scalarCount { v[i] = leaves[b[i].trailingZeroBitCount] }
            acc[Int(outputs[firstTree &+ t])] += v
        }
    }
}
